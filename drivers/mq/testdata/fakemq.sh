#!/bin/sh
# Contract fake of IBM MQ's strmqm, endmqm and dspmq, for tests only: it
# prints the documented dspmq lines and strmqm/endmqm messages and return
# codes, and keeps state in the folder above its bin/. Installed as
# symlinks named like the real commands.
#
# State per queue manager QM: QM.defined (it exists), QM.local (this
# instance: running | standby; absent = ended), QM.ended (how it last
# ended), QM.elsewhere (an active instance runs on another machine),
# QM.standby-elsewhere (a standby waits on another machine).
bin=$(cd "$(dirname "$0")" && pwd)
state="$bin/../state"
tool=$(basename "$0")
echo "$tool $*" >> "$state/calls.log"
[ -f "$state/hang-$tool" ] && sleep 300

qm="" x=0 s=0 mode=c
for a in "$@"; do
	case "$a" in
	-m) ;;
	-x) x=1;;
	-s) s=1;;
	-c|-w|-i|-p) mode=${a#-};;
	-*) ;;
	*) qm=$a;;
	esac
done
local=$(cat "$state/$qm.local" 2>/dev/null)

if [ ! -f "$state/$qm.defined" ]; then
	case "$tool" in
	dspmq) echo "AMQ7048E: The queue manager name is either not valid or not known."; exit 72;;
	*) echo "AMQ8118E: IBM MQ queue manager does not exist."; exit 16;;
	esac
fi

case "$tool" in
dspmq)
	case "$local" in
	running) st="Running";;
	standby) st="Running as standby";;
	*) if [ -f "$state/$qm.elsewhere" ]; then st="Running elsewhere"; else st=$(cat "$state/$qm.ended" 2>/dev/null || echo "Ended normally"); fi;;
	esac
	printf 'QMNAME(%s)%*sSTATUS(%s)\n' "$qm" $((58 - ${#qm})) "" "$st"
	exit 0;;
strmqm)
	if [ "$local" = running ]; then echo "IBM MQ queue manager '$qm' running."; exit 5; fi
	if [ -f "$state/$qm.elsewhere" ]; then
		if [ $x = 1 ]; then
			echo standby > "$state/$qm.local"
			echo "A standby instance of queue manager '$qm' has been started. The active instance is running elsewhere."
			exit 0
		fi
		echo "IBM MQ queue manager '$qm' is running on another machine."
		exit 5
	fi
	echo "IBM MQ queue manager '$qm' starting."
	echo "The queue manager is associated with installation 'Installation1'."
	echo "5 log records accessed on queue manager '$qm' during the log replay phase."
	echo "Log replay for queue manager '$qm' complete."
	echo "Transaction manager state recovered for queue manager '$qm'."
	echo running > "$state/$qm.local"
	echo "IBM MQ queue manager '$qm' started using V9.3.0.0."
	exit 0;;
endmqm)
	case "$local" in
	"") echo "AMQ8146E: IBM MQ queue manager not available."; exit 40;;
	standby)
		if [ $x = 1 ]; then rm -f "$state/$qm.local"; echo "IBM MQ queue manager '$qm' standby instance ended."; exit 0; fi
		echo "IBM MQ queue manager '$qm' is running as a standby instance."
		exit 26;;
	esac
	[ "$mode" = w ] && echo "Waiting for queue manager '$qm' to end."
	echo "IBM MQ queue manager '$qm' ending."
	rm -f "$state/$qm.local"
	case "$mode" in
	i) echo "Ended immediately" > "$state/$qm.ended";;
	p) echo "Ended preemptively" > "$state/$qm.ended";;
	*) echo "Ended normally" > "$state/$qm.ended";;
	esac
	if [ $s = 1 ] && [ -f "$state/$qm.standby-elsewhere" ]; then
		# The standby on the other machine takes over.
		mv "$state/$qm.standby-elsewhere" "$state/$qm.elsewhere"
		echo "IBM MQ queue manager '$qm' ended, permitting switchover to a standby instance."
		exit 0
	fi
	echo "IBM MQ queue manager '$qm' ended."
	exit 0;;
esac
echo "fake: unknown tool $tool" >&2
exit 2
