//! Small admin helpers over [`kapi`](crate::kapi): client quotas
//! (AlterClientQuotas / DescribeClientQuotas) and dynamic configs of
//! topics and brokers (IncrementalAlterConfigs / DescribeConfigs), the
//! requests behind `kafka-configs.sh`. The nemesis throttles clients and
//! replication with them and removes what it set when it heals.

use crate::kapi::messages::{
    alter_client_quotas_request, describe_client_quotas_request, describe_configs_request,
    incremental_alter_configs_request, AlterClientQuotasRequest, ApiKey,
    DescribeClientQuotasRequest, DescribeConfigsRequest, IncrementalAlterConfigsRequest,
};
use crate::kapi::{Brokers, KStr, KapiError};

/// A config resource: a topic, one broker, or every broker's default.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resource {
    Topic(String),
    /// One broker, by node id.
    Broker(i32),
    /// The cluster-wide default of every broker.
    BrokerDefault,
}

impl Resource {
    fn kind(&self) -> i8 {
        match self {
            Resource::Topic(_) => 2,
            Resource::Broker(_) | Resource::BrokerDefault => 4,
        }
    }

    fn name(&self) -> String {
        match self {
            Resource::Topic(t) => t.clone(),
            Resource::Broker(id) => id.to_string(),
            Resource::BrokerDefault => String::new(),
        }
    }
}

/// Where a config value comes from (DescribeConfigs' `config_source`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigSource {
    DynamicTopic,
    DynamicBroker,
    DynamicBrokerDefault,
    Static,
    Default,
    Other(i8),
}

impl ConfigSource {
    fn from_code(c: i8) -> ConfigSource {
        match c {
            1 => ConfigSource::DynamicTopic,
            2 => ConfigSource::DynamicBroker,
            3 => ConfigSource::DynamicBrokerDefault,
            4 => ConfigSource::Static,
            5 => ConfigSource::Default,
            x => ConfigSource::Other(x),
        }
    }

    /// Set at run time (through the admin API), not from a file or default.
    pub fn is_dynamic(self) -> bool {
        matches!(
            self,
            ConfigSource::DynamicTopic
                | ConfigSource::DynamicBroker
                | ConfigSource::DynamicBrokerDefault
        )
    }
}

/// One described config.
#[derive(Clone, Debug, PartialEq)]
pub struct ConfigValue {
    pub name: String,
    pub value: Option<String>,
    pub source: ConfigSource,
}

fn kstr(s: &str) -> KStr {
    KStr::from_string(s.to_string())
}

/// Sets (`Some`) or deletes (`None`) configs of `resource`. Broker
/// resources go to that broker, the others to any broker.
pub async fn alter_configs(
    brokers: &mut Brokers,
    resource: &Resource,
    configs: &[(&str, Option<String>)],
) -> Result<(), KapiError> {
    use incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig};
    let req = IncrementalAlterConfigsRequest::default().with_resources(vec![
        AlterConfigsResource::default()
            .with_resource_type(resource.kind())
            .with_resource_name(kstr(&resource.name()))
            .with_configs(
                configs
                    .iter()
                    .map(|(k, v)| {
                        AlterableConfig::default()
                            .with_name(kstr(k))
                            // 0 SET, 1 DELETE
                            .with_config_operation(if v.is_some() { 0 } else { 1 })
                            .with_value(v.as_deref().map(kstr))
                    })
                    .collect(),
            ),
    ]);
    let resp = match resource {
        Resource::Broker(id) => brokers.send_to(*id, &req).await?,
        _ => brokers.send_any(&req).await?,
    };
    for r in &resp.responses {
        KapiError::check(
            &resource.name(),
            ApiKey::IncrementalAlterConfigs,
            r.error_code,
            r.error_message.as_ref(),
        )?;
    }
    Ok(())
}

/// The values of `keys` of `resource` as the cluster reports them.
pub async fn describe_configs(
    brokers: &mut Brokers,
    resource: &Resource,
    keys: &[&str],
) -> Result<Vec<ConfigValue>, KapiError> {
    use describe_configs_request::DescribeConfigsResource;
    let req =
        DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(resource.kind())
            .with_resource_name(kstr(&resource.name()))
            .with_configuration_keys(Some(keys.iter().map(|k| kstr(k)).collect()))]);
    let resp = match resource {
        Resource::Broker(id) => brokers.send_to(*id, &req).await?,
        _ => brokers.send_any(&req).await?,
    };
    let mut out = Vec::new();
    for r in resp.results {
        KapiError::check(
            &resource.name(),
            ApiKey::DescribeConfigs,
            r.error_code,
            r.error_message.as_ref(),
        )?;
        out.extend(r.configs.into_iter().map(|c| ConfigValue {
            name: c.name.to_string(),
            value: c.value.map(|v| v.to_string()),
            source: ConfigSource::from_code(c.config_source),
        }));
    }
    Ok(out)
}

/// A client-quota entity: a client id, or the default client (`None`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientEntity(pub Option<String>);

/// Sets (`Some(rate)`) or removes (`None`) quotas of `entity`
/// (`producer_byte_rate`, `consumer_byte_rate`, `request_percentage`).
pub async fn alter_client_quotas(
    brokers: &mut Brokers,
    entity: &ClientEntity,
    ops: &[(&str, Option<f64>)],
) -> Result<(), KapiError> {
    use alter_client_quotas_request::{EntityData, EntryData, OpData};
    let req = AlterClientQuotasRequest::default().with_entries(vec![EntryData::default()
        .with_entity(vec![EntityData::default()
            .with_entity_type(kstr("client-id"))
            .with_entity_name(entity.0.as_deref().map(kstr))])
        .with_ops(
            ops.iter()
                .map(|(k, v)| {
                    OpData::default()
                        .with_key(kstr(k))
                        .with_value(v.unwrap_or(0.0))
                        .with_remove(v.is_none())
                })
                .collect(),
        )]);
    let resp = brokers.send_any(&req).await?;
    for e in &resp.entries {
        KapiError::check(
            "client-quotas",
            ApiKey::AlterClientQuotas,
            e.error_code,
            e.error_message.as_ref(),
        )?;
    }
    Ok(())
}

/// The quotas set on exactly `entity` (empty when none).
pub async fn describe_client_quotas(
    brokers: &mut Brokers,
    entity: &ClientEntity,
) -> Result<Vec<(String, f64)>, KapiError> {
    use describe_client_quotas_request::ComponentData;
    // match_type 0: exact name, 1: the default entity.
    let component = match &entity.0 {
        Some(name) => ComponentData::default()
            .with_entity_type(kstr("client-id"))
            .with_match_type(0)
            .with_match(Some(kstr(name))),
        None => ComponentData::default()
            .with_entity_type(kstr("client-id"))
            .with_match_type(1)
            .with_match(None),
    };
    let req = DescribeClientQuotasRequest::default()
        .with_components(vec![component])
        .with_strict(true);
    let resp = brokers.send_any(&req).await?;
    KapiError::check(
        "client-quotas",
        ApiKey::DescribeClientQuotas,
        resp.error_code,
        resp.error_message.as_ref(),
    )?;
    Ok(resp
        .entries
        .unwrap_or_default()
        .into_iter()
        .flat_map(|e| e.values)
        .map(|v| (v.key.to_string(), v.value))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resources_name_their_kind_as_kafka_numbers_them() {
        assert_eq!(Resource::Topic("t".into()).kind(), 2);
        assert_eq!(Resource::Broker(3).name(), "3");
        assert_eq!(Resource::BrokerDefault.name(), "");
        assert_eq!(Resource::BrokerDefault.kind(), 4);
        assert!(ConfigSource::from_code(2).is_dynamic());
        assert!(!ConfigSource::from_code(5).is_dynamic());
    }
}
