//! L4 switching: `mode tcp` and `mode udp` listeners.
