from cephalo_common.service_main import service_main
from cephalo_gateway.app import create_app
from cephalo_gateway.settings import GatewaySettings

if __name__ == "__main__":
    service_main("cephalo_gateway", create_app, GatewaySettings)  # type: ignore[arg-type]
