"""Threat-intelligence sharing: the sharing policy and TLP 2.0 markings, the STIX 2.1 export of an
incident, the TAXII 2.1 server's routes, and the readers of other organisations' TAXII
collections and MISP feeds that fill the store's shared indicators (docs/intel.md)."""
