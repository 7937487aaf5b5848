from cephalo_common.service_main import service_main
from cephalo_release.app import create_app
from cephalo_release.settings import ReleaseSettings

if __name__ == "__main__":
    service_main("cephalo_release", create_app, ReleaseSettings)  # type: ignore[arg-type]
