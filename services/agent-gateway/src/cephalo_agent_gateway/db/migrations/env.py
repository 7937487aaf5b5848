from cephalo_agent_gateway.db.models import Base
from cephalo_common.db.migrations import run_env

run_env(Base.metadata)
