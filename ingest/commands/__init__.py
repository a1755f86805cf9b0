"""Platform → logger commands (HJ 212 requests): recall of missing data, the logger's clock,
and commands an operator sends. Requested into the service database by the API, the CLI and
the rules; sent by the service on the logger's reply topic (the TCP gateway writes them to
the connection); answered by the logger's 9011/9012 and data, matched by QN."""
