#!/bin/bash
# Relay failover experiment (BENCHMARKS.md "Relay failover"): two kcat members of a group on a
# fresh 4-partition topic, 20 messages/s, kill -9 of one member and (RESTART=1) its restart a
# second later; prints the worst delay (receive − produce) of a message on the killed member's
# partitions.
#   usage: scripts/relay-failover.sh STRATEGY STATIC(0/1) SESSION_MS RESTART(0/1)
# Needs kcat on a librdkafka tansu accepts (LD_LIBRARY_PATH as in the README's interop section),
# KAFKA_BROKERS (default 127.0.0.1:9092) and TANSU_BIN (to create the topic).
cd "$(mktemp -d)" || exit 1
# usage: exp2.sh STRATEGY STATIC(0/1) SESSION_MS RESTART(0/1)
strat=$1 static=$2 sess=$3 restart=$4
T="${TANSU_BIN:?set TANSU_BIN}"
B="${KAFKA_BROKERS:-127.0.0.1:9092}"; topic=exp.$RANDOM; group=g.$RANDOM
$T topic create $topic --broker tcp://$B --partitions 4 >/dev/null 2>&1
common=(-b $B -X session.timeout.ms=$sess -X heartbeat.interval.ms=$((sess/6 > 100 ? sess/6 : 100)) -X partition.assignment.strategy=$strat -q -o beginning -f '%p %s\n' -u)
s1=(); s2=()
if [ "$static" = 1 ]; then s1=(-X group.instance.id=c1); s2=(-X group.instance.id=c2); fi
stamp() { while read -r a b; do echo "$a $b $(date +%s%N)"; done; }
kcat -G $group "${common[@]}" "${s1[@]}" $topic 2> c1.err > >(stamp > c1.out) & p1=$!
kcat -G $group "${common[@]}" "${s2[@]}" $topic 2> c2.err > c2.raw & p2=$!
sleep 12
( i=0; while true; do echo "$(date +%s%N)" | kcat -P -b $B -t $topic -p $((i%4)) 2>/dev/null; i=$((i+1)); sleep 0.05; done ) & pp=$!
sleep 3
c2parts=$(awk '{print $1}' c2.raw | sort -u | tr '\n' ' ')
kill -9 $p2; t0=$(date +%s%N)
if [ "$restart" = 1 ]; then sleep 1; kcat -G $group "${common[@]}" "${s2[@]}" $topic 2> c3.err > >(stamp > c3.out) & p3=$!; fi
sleep 25
kill $pp $p1 $p3 2>/dev/null; wait 2>/dev/null
cat c1.out c3.out 2>/dev/null | awk -v parts=" $c2parts" -v t0=$t0 '{ if (index(parts, " " $1 " ") && $2 > t0) { d = $3 - $2; if (d > max) max = d } } END {printf "worst delay on the killed member'"'"'s partitions: %.2f s\n", max/1e9}'
echo "strategy=$strat static=$static session=$sess restart=$restart c2parts=[$c2parts]"
