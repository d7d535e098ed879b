// Tests that drive a cluster with broker-like data get the corpus with this module.
@_exported import BrokerMessageCorpus
