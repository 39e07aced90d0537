"""Foreign clients on switchboard's dead letters (run by scripts/dlq-check.sh).

`check`: confluent-kafka publishes an undecodable request and pika an undecodable job; the
running all-in-one dead-letters both; confluent-kafka then reads the requests' dead-letter
topic and pika the jobs' dead-letter queue (basic_get, then nack with requeue, so the message
stays), and both check the origin headers. `cleanup`: deletes the run's RabbitMQ queues.
Names come from the environment dlq-check.sh sets.
"""

import os
import sys
import time

import pika
from confluent_kafka import Consumer, Producer

PATIENCE_S = 60
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def env(name):
    value = os.environ.get(name)
    if not value:
        sys.exit(f"{name} is not set")
    return value


def headers_of(raw):
    out = {}
    for k, v in raw or []:
        out[k] = v.decode("utf-8", "replace") if isinstance(v, (bytes, bytearray)) else str(v)
    return out


def require(headers, name, expected=None):
    if name not in headers:
        sys.exit(f"header {name} missing: {headers}")
    if expected is not None and headers[name] != expected:
        sys.exit(f"header {name} is {headers[name]!r}, expected {expected!r}")


def within_patience(fetch, pause_s, close, nothing):
    """fetch() again, pause_s apart, until it returns something; close() after, in any case.
    Exits with the message `nothing` when PATIENCE_S pass without."""
    deadline = time.time() + PATIENCE_S
    try:
        while time.time() < deadline:
            got = fetch()
            if got is not None:
                return got
            time.sleep(pause_s)
    finally:
        close()
    sys.exit(f"{nothing} within {PATIENCE_S} s")


def require_origin(headers, reason, origin, *present):
    """The headers every dead letter carries: the reason, where it came from, when it first
    failed, one attempt, and the trace it was published under; plus `present` by name."""
    require(headers, "x-switchboard-error")
    if not headers["x-switchboard-error"].startswith(reason):
        sys.exit(f"unexpected reason: {headers}")
    require(headers, "x-switchboard-origin", origin)
    for name in present:
        require(headers, name)
    require(headers, "x-switchboard-first-failed")
    require(headers, "x-switchboard-attempts", "1")
    require(headers, "traceparent", TRACEPARENT)


def amqp_connection():
    return pika.BlockingConnection(pika.URLParameters(env("AMQP_URL")))


def kafka_check():
    brokers = env("KAFKA_BROKERS")
    requests, dlq = env("SWITCHBOARD_REQUESTS_TOPIC"), env("SWITCHBOARD_REQUESTS_DLQ")
    producer = Producer({"bootstrap.servers": brokers, "allow.auto.create.topics": False})
    producer.produce(requests, key=b"foreign-1", value=b"\xff\x00 not an envelope", headers=[("traceparent", TRACEPARENT)])
    if producer.flush(30) != 0:
        sys.exit("confluent-kafka: the poison request was not delivered")
    consumer = Consumer({
        "bootstrap.servers": brokers,
        "group.id": f"dlq-check-{os.getpid()}",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "allow.auto.create.topics": False,
    })
    consumer.subscribe([dlq])

    def poll():
        m = consumer.poll(1.0)
        return None if m is None or m.error() else (m, headers_of(m.headers()))

    m, h = within_patience(poll, 0, consumer.close, f"confluent-kafka: nothing on {dlq}")
    require_origin(h, "undecodable envelope", requests,
                   "x-switchboard-origin-partition", "x-switchboard-origin-offset")
    if m.key() != b"foreign-1":
        sys.exit(f"key not kept: {m.key()!r}")
    print(f"kafka: {dlq} partition {m.partition()} offset {m.offset()}: {sorted(h)}")


def amqp_check():
    queue = env("SWITCHBOARD_JOBS_QUEUE")
    conn = amqp_connection()
    ch = conn.channel()
    props = pika.BasicProperties(delivery_mode=2, headers={"traceparent": TRACEPARENT})
    ch.confirm_delivery()
    ch.basic_publish("", queue, b"\xff\x00 not a job", props, mandatory=True)

    def get():
        method, properties, _body = ch.basic_get(f"{queue}.dlq", auto_ack=False)
        if method is None:
            return None
        # Back where it was: the dead letter stays for the tool.
        ch.basic_nack(method.delivery_tag, requeue=True)
        return headers_of((properties.headers or {}).items())

    h = within_patience(get, 0.2, conn.close, f"pika: nothing on {queue}.dlq")
    require_origin(h, "undecodable job", queue)
    print(f"rabbitmq: {queue}.dlq: {sorted(h)}")


def cleanup():
    queue = env("SWITCHBOARD_JOBS_QUEUE")
    conn = amqp_connection()
    for name in [queue, f"{queue}.dlq", f"{queue}.retry.1000ms", f"{queue}.retry.5000ms", f"{queue}.retry.30000ms"]:
        ch = conn.channel()
        try:
            ch.queue_delete(name)
        except Exception:  # noqa: BLE001 - a queue already gone is what cleanup wants
            pass
    try:
        conn.channel().exchange_delete(env("SWITCHBOARD_JOB_EVENTS_EXCHANGE"))
    except Exception:  # noqa: BLE001
        pass
    conn.close()


if __name__ == "__main__":
    if sys.argv[1:] == ["check"]:
        kafka_check()
        amqp_check()
    elif sys.argv[1:] == ["cleanup"]:
        cleanup()
    else:
        sys.exit("usage: dlq_check.py check|cleanup")
