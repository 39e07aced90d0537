-- wrk: POST /messages with the seed body (scripts/versus.sh).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"message": "hello world"}'
