import sys

from cephalo_common.service_main import service_main
from cephalo_release.app import create_app
from cephalo_release.settings import ReleaseSettings

if __name__ == "__main__":
    if sys.argv[1:2] == ["rotate-keys"]:
        from cephalo_release.rotate import main

        main()
    else:
        service_main("cephalo_release", create_app, ReleaseSettings)  # type: ignore[arg-type]
