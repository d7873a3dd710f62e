#!/usr/bin/env bash
# Runs every go test -fuzz target of the module for a while each and prints
# a table: executions, new interesting inputs, failures. Not part of
# tests/run.sh (CI has no time for it); run it by hand or on a schedule.
#
#   tests/fuzz/run.sh [DURATION] [TARGET-REGEXP]
#
# DURATION is a -fuzztime value (default 1m: 90s, 10m, 1h, or 5000x for a
# count of executions). TARGET-REGEXP picks targets by "pkg/FuzzName"
# (default: all). FUZZ_PARALLEL sets -parallel (default: GOMAXPROCS).
#
# A failing input is written by go test to pkg/testdata/fuzz/FuzzName/ and
# stays there as a regression seed: commit it with the fix. The log of each
# target is kept in $FUZZ_LOGDIR (default a temporary directory). The exit
# status is 1 if any target failed.
set -uo pipefail
cd "$(dirname "$0")/../.."

dur=${1:-1m}
filter=${2:-.}
logdir=${FUZZ_LOGDIR:-$(mktemp -d -t rump9p-fuzz.XXXXXX)}
mkdir -p "$logdir"
par=()
[ -n "${FUZZ_PARALLEL:-}" ] && par=(-parallel "$FUZZ_PARALLEL")

# The watchdogs in the driver targets catch hangs; the go test timeout
# outlasts the fuzzing time by 10 minutes (for the baseline run of the
# corpus) and catches a hang anywhere else. A duration that is not whole
# hours, minutes and seconds (or a count, 5000x) gets no timeout.
timeout=0
if [[ $dur =~ ^(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?$ ]] && [ -n "$dur" ]; then
	timeout=$((${BASH_REMATCH[2]:-0} * 3600 + ${BASH_REMATCH[4]:-0} * 60 + ${BASH_REMATCH[6]:-0} + 600))s
fi

# Targets: "./pkg FuzzName" for each func FuzzXxx(f *testing.F).
mapfile -t targets < <(grep -rEo --include='*_test.go' '^func Fuzz[A-Za-z0-9_]+\(' . |
	sed -E 's#^(.*)/[^/]+_test\.go:func (Fuzz[A-Za-z0-9_]+)\($#\1 \2#' | sort -u |
	while read -r pkg name; do
		[[ "${pkg#./}/$name" =~ $filter ]] && echo "$pkg $name"
	done)
if ((${#targets[@]} == 0)); then
	echo "no fuzz target matches $filter" >&2
	exit 2
fi

echo "fuzzing ${#targets[@]} targets for $dur each on $(nproc) CPUs (load average $(cut -d' ' -f1-3 /proc/loadavg)); logs in $logdir"
rows=()
failed=0
for t in "${targets[@]}"; do
	read -r pkg name <<<"$t"
	log="$logdir/$(tr / _ <<<"${pkg#./}")_$name.log"
	printf '%-40s ' "${pkg#./} $name" >&2
	start=$SECONDS
	go test -run='^$' -fuzz="^$name\$" -fuzztime="$dur" -timeout="$timeout" "${par[@]}" "$pkg" >"$log" 2>&1
	rc=$?
	secs=$((SECONDS - start))
	# go test prints "fuzz: elapsed: 1m0s, execs: 123 (2/sec), new interesting: 4 (total: 9)".
	last=$(grep -E '^fuzz: elapsed: .*execs: ' "$log" | tail -n 1)
	execs=$(sed -nE 's/.*execs: ([0-9]+) .*/\1/p' <<<"$last")
	elapsed=$(sed -nE 's/^fuzz: elapsed: ([0-9hms.]+),.*/\1/p' <<<"$last")
	rate=0
	if [[ $elapsed =~ ^(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)(\.[0-9]+)?s)?$ ]]; then
		el=$((${BASH_REMATCH[2]:-0} * 3600 + ${BASH_REMATCH[4]:-0} * 60 + ${BASH_REMATCH[6]:-0}))
		((el > 0)) && rate=$((${execs:-0} / el))
	fi
	newi=$(sed -nE 's/.*new interesting: ([0-9]+) \(total: ([0-9]+)\).*/\1/p' <<<"$last")
	total=$(sed -nE 's/.*\(total: ([0-9]+)\).*/\1/p' <<<"$last")
	result=ok
	if ((rc != 0)); then
		failed=1
		crasher=$(sed -nE 's/.*Failing input written to (.*)$/\1/p' "$log" | tail -n 1)
		result="FAIL ${crasher:+${pkg#./}/$crasher}"
		[ -n "$crasher" ] || result="FAIL (exit $rc, see $log)"
	fi
	echo "$result (${secs}s)" >&2
	rows+=("$(printf '%-20s %-18s %10s %8s %8s %8s  %s' "${pkg#./}" "$name" "${execs:-0}" "${rate:-0}" "${newi:-0}" "${total:-0}" "$result")")
done

echo
printf '%-20s %-18s %10s %8s %8s %8s  %s\n' package target execs execs/s new corpus result
for r in "${rows[@]}"; do
	echo "$r"
done
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
exit $failed
