#!/bin/sh
# Contract fake of a WebSphere ND profile's bin/ scripts, for tests only: it
# prints the documented ADMU/WASX messages and keeps state in the profile's
# state/ folder. Installed as symlinks named like the real scripts.
bin=$(cd "$(dirname "$0")" && pwd)
state="$bin/../state"
tool=$(basename "$0")
echo "$tool $*" >> "$state/calls.log"
[ -f "$state/hang-$tool" ] && sleep 300

user="" pass="" script=""
server=""
while [ $# -gt 0 ]; do
	case "$1" in
	-username|-user) user=$2; shift 2;;
	-password) pass=$2; shift 2;;
	-c) script=$2; shift 2;;
	-lang|-conntype) shift 2;;
	-*) shift;;
	*) [ -z "$server" ] && server=$1; shift;;
	esac
done

echo "ADMU0116I: Tool information is being logged in file $state/$tool.log"
echo "ADMU0128I: Starting tool with the Fake01 profile"
# A fake trace line that echoes the password, so tests prove the driver
# redacts what a product prints.
[ -n "$pass" ] && echo "ADMU7701I: trace: credentials $user/$pass"

secured() {
	[ -f "$state/secure" ] || return 0
	[ "$user:$pass" = "$(cat "$state/secure")" ] && return 0
	echo "ADMU0111E: Program exiting with error: javax.management.JMRuntimeException: ADMN0022E: Access is denied for the $1 operation on Server MBean because of insufficient or empty credentials."
	exit 255
}

known() {
	grep -qx "$1" "$state/servers" 2>/dev/null && return 0
	echo "ADMU0522E: No server by this name in the configuration: $1"
	exit 255
}

ptype() {
	case "$1" in
	dmgr) echo "Deployment Manager";;
	nodeagent) echo "Node Agent";;
	*) echo "Application Server";;
	esac
}

case "$tool" in
startManager.sh) server=dmgr;;
stopManager.sh) server=dmgr;;
startNode.sh) server=nodeagent;;
stopNode.sh) server=nodeagent;;
esac

case "$tool" in
serverStatus.sh)
	secured getState
	echo "ADMU0500I: Retrieving server status for $server"
	known "$server"
	if [ -f "$state/$server.started" ]; then
		echo "ADMU0508I: The $(ptype "$server") \"$server\" is STARTED"
	else
		echo "ADMU0509I: The $(ptype "$server") \"$server\" cannot be reached. It appears to be stopped."
	fi
	exit 0;;
startServer.sh|startManager.sh|startNode.sh)
	echo "ADMU3100I: Reading configuration for server: $server"
	known "$server"
	if [ -f "$state/$server.started" ]; then
		echo "ADMU3027E: An instance of the server may already be running: $server"
		echo "ADMU3028I: Conflict detected on port 8880.  Likely causes: a) An instance of the server $server is already running b) some other process is using port 8880"
		exit 255
	fi
	if [ -f "$state/fail-$server" ]; then
		echo "ADMU3200I: Server launched. Waiting for initialization status."
		echo "ADMU3011E: Server launched but failed initialization. startServer.log, SystemOut.log(or job log in zOS) and other log files under $state/logs/$server should contain failure information."
		exit 255
	fi
	echo "ADMU3200I: Server launched. Waiting for initialization status."
	touch "$state/$server.started"
	echo "ADMU3000I: Server $server open for e-business; process id is $$"
	exit 0;;
stopServer.sh|stopManager.sh|stopNode.sh)
	echo "ADMU3100I: Reading configuration for server: $server"
	known "$server"
	secured stop
	if [ ! -f "$state/$server.started" ]; then
		echo "ADMU0509I: The $(ptype "$server") \"$server\" cannot be reached. It appears to be stopped."
		exit 255
	fi
	echo "ADMU3201I: Server stop request issued. Waiting for stop status."
	rm -f "$state/$server.started"
	echo "ADMU4000I: Server $server stop completed."
	exit 0;;
wsadmin.sh)
	if [ ! -f "$state/dmgr.started" ] && [ ! -f "$state/nodeagent.started" ]; then
		echo "WASX7023E: Error creating \"SOAP\" connection to host \"localhost\"; exception information: com.ibm.websphere.management.exception.ConnectorNotAvailableException: ADMC0016E: The system cannot create a SOAP connector to connect to host localhost at port 8879."
		echo "WASX7213I: This scripting client is not connected to a server process; please refer to the log file $state/wsadmin.traceout for additional information."
		exit 103
	fi
	if [ -f "$state/secure" ] && [ "$user:$pass" != "$(cat "$state/secure")" ]; then
		echo "WASX7246E: Cannot establish \"SOAP\" connection to host \"localhost\" because of an authentication failure. Ensure that user and password are correct on the command line or in a properties file."
		echo "ADMN0022E: Access is denied"
		exit 103
	fi
	echo "WASX7209I: Connected to process \"dmgr\" on node CellManager01 using SOAP connector;  The type of process is: DeploymentManager"
	# -c takes one line: the driver sends `exec '<script with \n escapes>'`.
	case "$script" in
	"exec '"*"'") ;;
	*) echo "WASX7015E: Error running command: \"$script\"; exception information: SyntaxError"; exit 105;;
	esac
	stopsrv=$(printf '%s' "$script" | sed -n 's/.*AdminControl.stopServer("\([^"]*\)", "\([^"]*\)", "immediate").*/\1 \2/p')
	if [ -n "$stopsrv" ]; then
		set -- $stopsrv
		echo "WASX7337I: Invoked stop for server \"$1\" Waiting for stop completion."
		rm -f "$state/$1.started"
		echo "WASX7264I: Stop completed for server \"$1\" on node \"$2\""
		echo "DROVER-RESULT stopped"
		exit 0
	fi
	cluster=$(printf '%s' "$script" | sed -n "s/.*type=Cluster,name=\([^,]*\),.*/\1/p" | head -1)
	engine=$(printf '%s' "$script" | sed -n "s/.*type=SIBMessagingEngine,name=\([^,]*\),.*/\1/p" | head -1)
	if [ -n "$cluster" ]; then
		f="$state/cluster-$cluster"
		if [ ! -f "$f" ]; then echo "DROVER-RESULT none"; exit 0; fi
		cur=$(cat "$f")
		# A start or stop moves through the transient state first; the next
		# query finds it settled, as the Cluster MBean does.
		case "$cur" in
		websphere.cluster.starting) cur=websphere.cluster.running;;
		websphere.cluster.stopping) cur=websphere.cluster.stopped;;
		esac
		case "$script" in
		*'invoke(c, "start")'*) cur=websphere.cluster.starting;;
		*'invoke(c, "stop")'*|*'invoke(c, "stopImmediate")'*) cur=websphere.cluster.stopping;;
		esac
		echo "$cur" > "$f"
		echo "DROVER-RESULT $cur"
		exit 0
	fi
	if [ -n "$engine" ]; then
		f="$state/me-$engine"
		if [ ! -f "$f" ]; then echo "DROVER-RESULT none"; exit 0; fi
		cur=$(cat "$f")
		case "$script" in
		*'"start")'*) cur=$(echo "$cur" | sed 's/^Joined/Started/');;
		*'"stop"'*) cur=$(echo "$cur" | sed 's/Started/Joined/');;
		esac
		echo "$cur" > "$f"
		echo "DROVER-RESULT $cur"
		exit 0
	fi
	echo "WASX7015E: Error running command: unrecognized script"
	exit 105;;
esac
echo "fake: unknown tool $tool" >&2
exit 2
