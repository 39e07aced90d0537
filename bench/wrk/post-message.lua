-- wrk: POST /messages with "hello world", the Go example's first message (scripts/versus.sh).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"message": "hello world"}'
