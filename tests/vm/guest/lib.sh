# Shell helpers shared by the tests/vm guest scripts (workload.sh, reset.sh):
# the harness ships this file as /test/lib.sh. Each script sources
# /test/env first (TRANSPORT, HOST, PORT, ANAME, ...).

PATH=/test:/bin:/sbin
export PATH
failures=0
# TRACE_TIME (RUMP9P_VM_TRACE=1 on the host): every traced command carries
# the guest's uptime, and passing checks print their trace too.
[ -z "$TRACE_TIME" ] || PS4='+ $(cut -d" " -f1 /proc/uptime) '

# check NAME FUNC [ARG...]: run FUNC in a subshell with "set -e" (any
# failing simple command fails the check; the xtrace shows which), print the
# verdict. (The subshell is not an "if" condition, where -e would be
# ignored.) A check still running after $CHECK_TIMEOUT seconds (default 300)
# is killed and fails, so that a hung mount shows as a failed check rather
# than as a guest that never powers off.
check() {
	_name=$CHECK_PREFIX$1
	shift
	_t0=$(now)
	( set -ex; "$@" ) >/tmp/check.out 2>&1 &
	_pid=$!
	(
		trap 'kill $_s 2>/dev/null; exit 0' TERM
		sleep "${CHECK_TIMEOUT:-300}" &
		_s=$!
		wait $_s
		echo "check $_name still running after ${CHECK_TIMEOUT:-300} s: killed" >>/tmp/check.out
		kill_tree $_pid
	) 2>/dev/null &
	_dog=$!
	wait $_pid
	_rc=$?
	kill $_dog 2>/dev/null
	wait $_dog 2>/dev/null
	echo "INFO $_name took $(since $_t0)"
	if [ $_rc -eq 0 ]; then
		echo "CHECK $_name ok"
		[ -z "$TRACE_TIME" ] || sed 's/^/  | /' /tmp/check.out
	else
		echo "CHECK $_name FAIL"
		sed 's/^/  | /' /tmp/check.out | tail -n 30
		failures=$((failures + 1))
	fi
}

# kill_tree PID: SIGKILL PID and all its descendants (busybox has no pkill).
kill_tree() {
	for _c in $(awk -v p="$1" '$4 == p { print $1 }' /proc/[0-9]*/stat 2>/dev/null); do
		kill_tree "$_c"
	done
	kill -KILL "$1" 2>/dev/null
}

# fail MSG: print MSG and return false (use as "cond || fail msg").
fail() {
	echo "$*"
	return 1
}

# expect WHAT GOT WANT
expect() {
	[ "$2" = "$3" ] || fail "$1: got '$2', want '$3'"
}

now() { cut -d' ' -f1 /proc/uptime; }
# since T0: seconds elapsed since the uptime T0
since() { echo "$(now) $1" | awk '{ printf "%.2f s", $1 - $2 }'; }
# rate MIB T0: throughput of MIB mebibytes moved since the uptime T0
rate() { echo "$1 $(now) $2" | awk '{ t = $2 - $3; if (t <= 0) t = 0.01; printf "%d MiB in %.2f s = %.1f MiB/s", $1, t, $1 / t }'; }
# info MSG: a line for the console even from inside a check
info() { echo "INFO $*" >/dev/console; }
# wait_for FILE: until FILE exists (10 s at most)
wait_for() {
	_n=0
	while [ ! -e "$1" ]; do
		usleep 50000
		_n=$((_n + 1))
		[ $_n -lt 200 ] || fail "$1 never appeared"
	done
}

# mount9p DIR OPTS: mount the server on DIR with extra mount options (and
# cache=$CACHE when CACHE is set), with "rump9p guest-mount" (the static
# binary the harness ships as /test/rump9p):
#   tcp     trans=tcp to HOST:PORT (QEMU user networking)
#   fd      the virtio-serial port named rump9p, relayed through a socketpair
#           by guest-mount's own background process, mounted trans=fd
# or, for QEMU's own 9P server (-virtfs), with mount(8):
#   virtio  trans=virtio, the mount tag in ANAME
mount9p() {
	_o="$2${CACHE:+,cache=$CACHE}"
	case $TRANSPORT in
	tcp) rump9p guest-mount --timeout 60s --tcp "$HOST:$PORT" -o "aname=$ANAME,$_o" "$1" ;;
	fd) rump9p guest-mount --timeout 60s --virtio-port rump9p -o "aname=$ANAME,$_o" "$1" ;;
	virtio) mount -t 9p -o "trans=virtio,version=9p2000.L,$_o" "$ANAME" "$1" ;;
	*)
		echo "unknown TRANSPORT $TRANSPORT"
		return 1
		;;
	esac
}

