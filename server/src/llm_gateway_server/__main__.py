from llm_gateway_server.cli import main

raise SystemExit(main())
