"""Plain library code shared by Cephalo's services, agent and CLI. Never state."""
