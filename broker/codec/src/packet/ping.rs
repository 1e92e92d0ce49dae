//! PINGREQ and PINGRESP (spec v5 3.12, 3.13): a fixed header and nothing else.
