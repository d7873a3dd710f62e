#!/bin/sh
# Runs the workload once per cache mode in $CACHES (tests/vm
# TestLinuxClientVirtfs): each run's checks are named <cache>_<check>.
. /test/env
status=0
for c in $CACHES; do
	echo "INFO workload with cache=$c"
	CACHE=$c CHECK_PREFIX=${c}_ sh /test/workload.sh || status=1
done
exit $status
