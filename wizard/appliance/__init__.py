"""The appliance's published interfaces: the Local UI (Edge Local Management API) spec and what is built on it."""
