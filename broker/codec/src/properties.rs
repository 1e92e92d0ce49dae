//! MQTT 5 properties (spec 2.2.2): identifiers, and reading and writing the property block.
