from cephalo_common.service_main import service_main
from cephalo_feed.app import create_app
from cephalo_feed.settings import FeedSettings

if __name__ == "__main__":
    service_main("cephalo_feed", create_app, FeedSettings)  # type: ignore[arg-type]
