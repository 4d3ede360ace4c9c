from voxcall.cli import main

raise SystemExit(main())
