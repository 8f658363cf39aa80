//! Reading Jepsen Kafka `history.edn`: being written.
