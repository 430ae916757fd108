"""NAT lab and interop runners (reachable as `stunlike-tracker lab`)."""
