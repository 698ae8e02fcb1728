"""Every port of the domain, one module per area: storage (blobs, photo metadata), analysis, people, search.
Adapters implement them (adapters/aws, adapters/local); services depend on them only."""
