#!/bin/sh
# Contract fake of DB2's db2start, db2stop, db2 (CLP), db2pd and db2inidb,
# for tests only: it prints the documented messages and keeps state in
# $FAKE_DB2_STATE. Installed as symlinks named like the real commands.
#
# HADR pairs: $state/DB.partner holds the other instance's state folder;
# both ends keep DB.peer while the pair is connected (both active, one
# PRIMARY and one STANDBY).
state=${FAKE_DB2_STATE:?FAKE_DB2_STATE not set: source the fake db2profile}
tool=$(basename "$0")
echo "$tool $*" >> "$state/calls.log"
[ -f "$state/hang-$tool" ] && sleep 300

up() { [ -f "$state/instance.up" ]; }
partner() { cat "$state/$1.partner" 2>/dev/null; }
# repair DB: set or clear the peer marker at both ends.
repair() {
	p=$(partner "$1")
	rm -f "$state/$1.peer"
	[ -n "$p" ] && rm -f "$p/$1.peer"
	[ -n "$p" ] || return 0
	r1=$(cat "$state/$1.role" 2>/dev/null); r2=$(cat "$p/$1.role" 2>/dev/null)
	if [ -f "$state/$1.active" ] && [ -f "$p/$1.active" ] && [ -f "$p/instance.up" ] &&
		{ [ "$r1/$r2" = PRIMARY/STANDBY ] || [ "$r1/$r2" = STANDBY/PRIMARY ]; }; then
		touch "$state/$1.peer" "$p/$1.peer"
	fi
}
exists() { grep -qix "$1" "$state/databases" 2>/dev/null; }
db() { echo "$1" | tr a-z A-Z; }

case "$tool" in
db2start)
	if up; then echo "SQL1026N  The database manager is already active."; exit 1; fi
	touch "$state/instance.up"
	echo "12/02/2026 02:13:25     0   0   SQL1063N  DB2START processing was successful."
	echo "SQL1063N  DB2START processing was successful."
	exit 0;;
db2stop)
	if ! up; then echo "SQL1032N  No start database manager command was issued."; exit 1; fi
	if [ "$1" != force ] && [ -f "$state/apps" ]; then
		echo "12/02/2026 02:13:25     0   0   SQL1025N  The database manager was not stopped because databases are still active."
		echo "SQL1025N  The database manager was not stopped because databases are still active."
		exit 1
	fi
	rm -f "$state/instance.up" "$state"/*.active "$state"/conn-*
	for f in "$state"/*.partner; do [ -f "$f" ] && repair "$(basename "$f" .partner)"; done
	echo "12/02/2026 02:13:25     0   0   SQL1064N  DB2STOP processing was successful."
	echo "SQL1064N  DB2STOP processing was successful."
	exit 0;;
db2pd)
	name=$(db "$2")
	if ! up; then
		echo "Unable to attach to database manager on member 0."
		echo "Please ensure the following are true:"
		echo "   - db2start has been run for the member."
		echo "   - db2pd is being run on the same physical machine as the member."
		echo "   - DB2NODE environment variable setting is correct for the member"
		echo "     or db2pd -mem setting is correct for the member."
		exit 0
	fi
	if [ ! -f "$state/$name.active" ]; then
		echo "Database $name not activated on database member 0 or this database name cannot be found in the local database directory."
		exit 0
	fi
	role=$(cat "$state/$name.role" 2>/dev/null || echo STANDARD)
	mode=Active
	[ "$role" = STANDBY ] && mode=Standby
	echo
	echo "Database Member 0 -- Database $name -- $mode -- Up 0 days 00:23:17 -- Date 12/02/2026 02:13:23"
	echo
	[ "$role" = STANDARD ] && exit 0
	if [ -f "$state/$name.peer" ]; then hstate=PEER conn=CONNECTED; else hstate=DISCONNECTED conn=DISCONNECTED; fi
	[ "$role" = STANDBY ] && [ "$hstate" = DISCONNECTED ] && hstate=REMOTE_CATCHUP_PENDING
	gap=$(cat "$state/$name.gap" 2>/dev/null || echo 0)
	ptime=$(cat "$state/$name.primarytime" 2>/dev/null || echo 1796177599)
	rtime=$(cat "$state/$name.replaytime" 2>/dev/null || echo 1796177599)
	cat <<OUT
                            HADR_ROLE = $role
                          REPLAY_TYPE = PHYSICAL
                        HADR_SYNCMODE = NEARSYNC
                           STANDBY_ID = 1
                        LOG_STREAM_ID = 0
                           HADR_STATE = $hstate
                           HADR_FLAGS =
                  PRIMARY_MEMBER_HOST = db2a.dc1.example
                     PRIMARY_INSTANCE = db2inst1
                       PRIMARY_MEMBER = 0
                  STANDBY_MEMBER_HOST = db2b.dc2.example
                     STANDBY_INSTANCE = db2inst1
                       STANDBY_MEMBER = 0
                  HADR_CONNECT_STATUS = $conn
             HADR_CONNECT_STATUS_TIME = 12/02/2026 01:50:06.199479 (1796176206)
          HEARTBEAT_INTERVAL(seconds) = 30
                HADR_TIMEOUT(seconds) = 120
        TIME_SINCE_LAST_RECV(seconds) = 3
             PEER_WAIT_LIMIT(seconds) = 0
           LOG_HADR_WAIT_CUR(seconds) = 0.000
    LOG_HADR_WAIT_RECENT_AVG(seconds) = 0.000598
   LOG_HADR_WAIT_ACCUMULATED(seconds) = 0.133
                  LOG_HADR_WAIT_COUNT = 223
SOCK_SEND_BUF_REQUESTED,ACTUAL(bytes) = 0, 16384
SOCK_RECV_BUF_REQUESTED,ACTUAL(bytes) = 0, 87380
            PRIMARY_LOG_FILE,PAGE,POS = S0000009.LOG, 1, 49262315
            STANDBY_LOG_FILE,PAGE,POS = S0000009.LOG, 1, 49262315
                  HADR_LOG_GAP(bytes) = $gap
     STANDBY_REPLAY_LOG_FILE,PAGE,POS = S0000009.LOG, 1, 49262315
       STANDBY_RECV_REPLAY_GAP(bytes) = 0
                     PRIMARY_LOG_TIME = 12/02/2026 02:13:19.000000 ($ptime)
                     STANDBY_LOG_TIME = 12/02/2026 02:13:19.000000 ($rtime)
              STANDBY_REPLAY_LOG_TIME = 12/02/2026 02:13:19.000000 ($rtime)
         STANDBY_RECV_BUF_SIZE(pages) = 16
             STANDBY_RECV_BUF_PERCENT = 0
           STANDBY_SPOOL_LIMIT(pages) = 0
                 PEER_WINDOW(seconds) = 0
             READS_ON_STANDBY_ENABLED = N
OUT
	exit 0;;
db2inidb)
	name=$(db "$1")
	if ! up; then echo "SQL1032N  No start database manager command was issued.  SQLSTATE=57019"; exit 1; fi
	if ! exists "$name"; then echo "SQL1013N  The database alias name or database name \"$name\" could not be found.  SQLSTATE=42705"; exit 1; fi
	rm -f "$state/$name.needsinit"
	echo "DBT1000I  The tool completed successfully."
	exit 0;;
db2)
	cmd=$(echo "$*" | tr A-Z a-z)
	conn="$state/conn-$PPID"
	case "$cmd" in
	"connect to "*)
		name=$(db "${cmd#connect to }")
		if ! up; then echo "SQL1032N  No start database manager command was issued.  SQLSTATE=57019"; exit 4; fi
		if ! exists "$name"; then echo "SQL1013N  The database alias name or database name \"$name\" could not be found.  SQLSTATE=42705"; exit 4; fi
		echo "$name" > "$conn"
		printf '\n   Database Connection Information\n\n Database server        = DB2/LINUXX8664 11.5.8.0\n SQL authorization ID   = DB2INST1\n Local database alias   = %s\n\n' "$name"
		exit 0;;
	"connect reset")
		rm -f "$conn"; echo "DB20000I  The SQL command completed successfully."; exit 0;;
	terminate)
		echo "DB20000I  The TERMINATE command completed successfully."; exit 0;;
	"set write suspend for database"|"set write resume for database")
		if [ ! -f "$conn" ]; then echo "SQL1024N  A database connection does not exist.  SQLSTATE=08003"; exit 4; fi
		name=$(cat "$conn")
		case "$cmd" in *suspend*) touch "$state/$name.suspended";; *) rm -f "$state/$name.suspended";; esac
		echo "DB20000I  The SET WRITE command completed successfully."
		exit 0;;
	"activate database "*)
		name=$(db "${cmd#activate database }")
		if ! up; then echo "SQL1032N  No start database manager command was issued.  SQLSTATE=57019"; exit 4; fi
		if ! exists "$name"; then echo "SQL1013N  The database alias name or database name \"$name\" could not be found.  SQLSTATE=42705"; exit 4; fi
		if [ -f "$state/$name.needsinit" ]; then echo "SQL20153N  The database's split image is in the suspended state.  SQLSTATE=55040"; exit 4; fi
		if [ -f "$state/$name.active" ]; then echo "SQL1490W  Activate database is successful, however, the database has already been activated on one or more nodes."; exit 2; fi
		touch "$state/$name.active"
		repair "$name"
		echo "DB20000I  The ACTIVATE DATABASE command completed successfully."
		exit 0;;
	"takeover hadr on database "*)
		rest=${cmd#takeover hadr on database }
		name=$(db "${rest%% *}")
		role=$(cat "$state/$name.role" 2>/dev/null || echo STANDARD)
		if [ "$role" != STANDBY ]; then echo "SQL1770N  Takeover HADR cannot complete. Reason code = \"1\"."; exit 4; fi
		case "$rest" in
		*"by force"*) ;;
		*) if [ ! -f "$state/$name.peer" ]; then echo "SQL1770N  Takeover HADR cannot complete. Reason code = \"8\"."; exit 4; fi;;
		esac
		echo PRIMARY > "$state/$name.role"
		case "$rest" in
		*"by force"*) ;;
		*) p=$(partner "$name"); [ -n "$p" ] && echo STANDBY > "$p/$name.role";;
		esac
		repair "$name"
		echo "DB20000I  The TAKEOVER HADR ON DATABASE command completed successfully."
		exit 0;;
	"start hadr on database "*)
		rest=${cmd#start hadr on database }
		name=$(db "${rest%% *}")
		role=$(echo "${rest##* }" | tr a-z A-Z)
		if ! up; then echo "SQL1032N  No start database manager command was issued.  SQLSTATE=57019"; exit 4; fi
		if ! exists "$name"; then echo "SQL1013N  The database alias name or database name \"$name\" could not be found.  SQLSTATE=42705"; exit 4; fi
		# A former primary whose log went past the new primary's cannot
		# rejoin: the test marks it diverged.
		if [ "$role" = STANDBY ] && [ -f "$state/$name.diverged" ]; then
			echo "SQL1767N  Start HADR cannot complete. Reason code = \"99\"."
			exit 4
		fi
		echo "$role" > "$state/$name.role"
		touch "$state/$name.active"
		repair "$name"
		echo "DB20000I  The START HADR ON DATABASE command completed successfully."
		exit 0;;
	"backup database "*)
		rest=${cmd#backup database }
		name=$(db "${rest%% *}")
		dir=$(echo "$*" | sed -n 's/.* to \([^ ]*\).*/\1/p')
		if [ ! -f "$state/$name.active" ]; then echo "SQL1035N  The operation failed because the specified database cannot be connected to in the mode requested.  SQLSTATE=57019"; exit 4; fi
		ts=20261202021325
		touch "$dir/$name.0.db2inst1.DBPART000.$ts.001"
		echo
		echo "Backup successful. The timestamp for this backup image is : $ts"
		echo
		exit 0;;
	"restore database "*)
		rest=${cmd#restore database }
		name=$(db "${rest%% *}")
		dir=$(echo "$*" | sed -n 's/.* from \([^ ]*\).*/\1/p')
		ts=$(echo "$*" | sed -n 's/.* taken at \([0-9]*\).*/\1/p')
		if [ ! -f "$dir/$name.0.db2inst1.DBPART000.$ts.001" ]; then echo "SQL2542N  No match for a database image file was found based on the source database alias \"$name\" and timestamp \"$ts\" provided."; exit 4; fi
		grep -qix "$name" "$state/databases" || echo "$name" >> "$state/databases"
		rm -f "$state/$name.active" "$state/$name.diverged" "$state/$name.needsinit"
		echo STANDARD > "$state/$name.role"
		echo "SQL2539W  The specified name of the backup image to restore is the same as the name of the target database.  Restoring to an existing database that is the same as the backup image database will cause the current database to be overwritten by the backup version."
		echo "DB20000I  The RESTORE DATABASE command completed successfully."
		exit 0;;
	esac
	echo "SQL0104N  An unexpected token was found.  SQLSTATE=42601"
	exit 4;;
esac
echo "fake: unknown tool $tool" >&2
exit 2
