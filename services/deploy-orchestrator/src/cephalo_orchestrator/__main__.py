from cephalo_common.service_main import service_main
from cephalo_orchestrator.app import create_app
from cephalo_orchestrator.settings import OrchestratorSettings

if __name__ == "__main__":
    service_main("cephalo_orchestrator", create_app, OrchestratorSettings)  # type: ignore[arg-type]
