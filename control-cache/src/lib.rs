//! Read side of the control plane for gateways and workers (being built; see issue 3, item 6).
