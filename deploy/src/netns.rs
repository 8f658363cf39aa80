//! Network namespaces and nftables partitions: being written.
