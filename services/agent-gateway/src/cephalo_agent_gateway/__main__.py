from cephalo_agent_gateway.app import create_app
from cephalo_agent_gateway.settings import AgentGatewaySettings
from cephalo_common.service_main import service_main

if __name__ == "__main__":
    service_main("cephalo_agent_gateway", create_app, AgentGatewaySettings)  # type: ignore[arg-type]
