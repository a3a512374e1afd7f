//! Loading and attaching the XDP program (`server-ebpf`), with fallback to pure userspace.
