from cephalo_cli.main import main

main()
