"""The simulated bench: one physical model behind real protocol servers (SCPI over TCP, Modbus TCP)."""
