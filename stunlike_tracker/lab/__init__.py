"""The NAT lab: namespaces, NAT behaviours, independent checks, the matrix."""
