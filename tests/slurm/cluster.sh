#!/usr/bin/env bash
# A throwaway single-node SLURM cluster with real accounting, for the test suite.
#
#   tests/slurm/cluster.sh start DIR   # install what is missing, configure into DIR, start, wait idle
#   tests/slurm/cluster.sh stop DIR    # cancel every job, stop every daemon started into DIR (by PID)
#   source DIR/env                     # SLURM_CONF for sbatch / squeue / sacct / scontrol
#
# Needs root and apt-get (Debian bookworm: SLURM 22.05, MariaDB 10.11). The daemons run
# without systemd, as children of nobody in particular (setsid), each recorded in DIR/pids:
# munged, mariadbd, slurmdbd (accounting, so that sacct is the real one), slurmctld, slurmd.
# Every file of the cluster (configs, state, logs, sockets, database) is under DIR.
#
# The node is this machine (`hostname -s`) with all its cores and 85% of its memory, in two
# partitions: `debug` (default, PriorityTier=1, PreemptMode=REQUEUE) and `high`
# (PriorityTier=10): a job in `high` preempts and requeues jobs in `debug`, which receive
# their --signal first (SlurmctldParameters=preempt_send_user_signal).
#
# Timings, SLURM_TEST_INSTALL_TIMEOUT (default 600 s) bounds the package installation and
# SLURM_TEST_START_TIMEOUT (default 60 s) every wait for a daemon.
set -euo pipefail

PACKAGES=(slurmctld slurmd slurm-client slurmdbd munge mariadb-server)
INSTALL_TIMEOUT=${SLURM_TEST_INSTALL_TIMEOUT:-600}
START_TIMEOUT=${SLURM_TEST_START_TIMEOUT:-60}

die() { echo "cluster.sh: $*" >&2; exit 1; }
log() { echo "cluster.sh: $*" >&2; }

missing_packages() {
    local p out=()
    for p in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || out+=("$p")
    done
    echo "${out[@]:-}"
}

install_packages() {
    local missing
    missing=$(missing_packages)
    [ -z "$missing" ] && return 0
    command -v apt-get >/dev/null || die "packages missing ($missing) and no apt-get to install them"
    log "installing $missing (at most ${INSTALL_TIMEOUT}s)"
    local deadline=$((SECONDS + INSTALL_TIMEOUT)) policy=/usr/sbin/policy-rc.d made_policy=0
    # Package scripts must not start the services themselves (no init system here): a
    # policy-rc.d that forbids it, for the length of the installation only.
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod 755 "$policy"; made_policy=1
    fi
    local rc=0
    (
        export DEBIAN_FRONTEND=noninteractive
        timeout $((deadline - SECONDS)) apt-get update -qq &&
        timeout $((deadline - SECONDS)) apt-get install -y -qq --no-install-recommends \
            -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold $missing
    ) >&2 || rc=$?
    [ "$made_policy" = 1 ] && rm -f "$policy"
    [ "$rc" = 0 ] || die "apt-get could not install $missing (exit $rc)"
    missing=$(missing_packages)
    [ -z "$missing" ] || die "still missing after apt-get: $missing"
}

free_port() {
    python3 - <<'EOF'
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
EOF
}

# start_daemon NAME CMD...: run CMD in a session of its own, its PID into DIR/pids/NAME.
start_daemon() {
    local name=$1; shift
    setsid "$@" >"$DIR/log/$name.out" 2>&1 < /dev/null &
    echo $! > "$DIR/pids/$name"
    echo "$name" >> "$DIR/pids/order"
}

# wait_for WHAT CMD...: until CMD succeeds, at most START_TIMEOUT seconds.
wait_for() {
    local what=$1; shift
    local deadline=$((SECONDS + START_TIMEOUT))
    until "$@" >/dev/null 2>&1; do
        [ $SECONDS -lt $deadline ] || { tail -n 20 "$DIR"/log/*.log "$DIR"/log/*.out >&2 2>/dev/null || true
                                      die "timed out after ${START_TIMEOUT}s waiting for $what (logs in $DIR/log)"; }
        sleep 0.2
    done
}

node_idle() { [ "$(sinfo -h -N -o %T 2>/dev/null | head -n1)" = idle ]; }

start() {
    [ "$(id -u)" = 0 ] || die "must run as root (daemons, packages)"
    install_packages
    mkdir -p "$DIR"
    DIR=$(cd "$DIR" && pwd)
    [ ! -s "$DIR/pids/order" ] || die "$DIR already holds a cluster; stop it first"
    chmod 755 "$DIR"
    mkdir -p "$DIR"/{pids,log,state,spool,munge,mysql}
    : > "$DIR/pids/order"
    local host mem_mb cpus t0=$SECONDS
    host=$(hostname -s)
    cpus=$(nproc --all)
    mem_mb=$(awk '/MemTotal/ {printf "%d", $2 / 1024 * 0.85}' /proc/meminfo)
    local ctld_port slurmd_port dbd_port db_port
    ctld_port=$(free_port); slurmd_port=$(free_port); dbd_port=$(free_port); db_port=$(free_port)

    # munge: the package's key, a socket of this cluster's own.
    chown munge:munge "$DIR/munge"; chmod 755 "$DIR/munge"
    local sock="$DIR/munge/munge.socket"
    start_daemon munged setpriv --reuid=munge --regid=munge --init-groups -- /usr/sbin/munged --foreground --force \
        --socket="$sock" --pid-file="$DIR/munge/munged.pid" --log-file="$DIR/munge/munged.log" \
        --seed-file="$DIR/munge/munged.seed" --key-file=/etc/munge/munge.key
    wait_for munged test -S "$sock"

    # MariaDB for slurmdbd: a database of this cluster's own, on localhost.
    local mysqld
    mysqld=$(command -v mariadbd || command -v mysqld || echo /usr/sbin/mariadbd)
    mariadb-install-db --no-defaults --datadir="$DIR/mysql" --user=root --skip-test-db \
        > "$DIR/log/mariadb-install.log" 2>&1 || { tail -n 20 "$DIR/log/mariadb-install.log" >&2; die "mariadb-install-db failed"; }
    start_daemon mariadbd "$mysqld" --no-defaults --datadir="$DIR/mysql" --user=root \
        --socket="$DIR/mysql.sock" --port="$db_port" --bind-address=127.0.0.1 \
        --pid-file="$DIR/mysql.pid" --log-error="$DIR/log/mariadb.log" \
        --innodb-buffer-pool-size=64M --innodb-log-file-size=48M
    wait_for mariadbd mariadb --no-defaults --socket="$DIR/mysql.sock" -u root -e "SELECT 1"
    local dbpass
    dbpass=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
    mariadb --no-defaults --socket="$DIR/mysql.sock" -u root -e \
        "CREATE USER 'slurm'@'127.0.0.1' IDENTIFIED BY '$dbpass'; GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';"

    local auth="AuthType=auth/munge
AuthInfo=socket=$sock,cred_expire=10"
    cat > "$DIR/slurmdbd.conf" <<EOF
$auth
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=$dbd_port
SlurmUser=root
PidFile=$DIR/slurmdbd.pid
LogFile=$DIR/log/slurmdbd.log
DebugLevel=info
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$db_port
StorageUser=slurm
StoragePass=$dbpass
StorageLoc=slurm_acct_db
EOF
    chmod 600 "$DIR/slurmdbd.conf"

    cat > "$DIR/slurm.conf" <<EOF
ClusterName=itttest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
$auth
CredType=cred/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=$dbd_port
AccountingStoragePass=$sock
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=5,bf_interval=5
JobRequeue=1
ReturnToService=2
KillWait=3
MinJobAge=3600
MailProg=/bin/true
PreemptType=preempt/partition_prio
PreemptMode=REQUEUE
SlurmctldParameters=preempt_send_user_signal
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP PriorityTier=1 PreemptMode=REQUEUE GraceTime=5
PartitionName=high Nodes=$host MaxTime=INFINITE State=UP PriorityTier=10 PreemptMode=OFF
EOF
    # slurmdbd reads slurmdbd.conf beside $SLURM_CONF.
    export SLURM_CONF="$DIR/slurm.conf"
    printf 'export SLURM_CONF=%q\n' "$SLURM_CONF" > "$DIR/env"

    start_daemon slurmdbd /usr/sbin/slurmdbd -D
    wait_for slurmdbd sacctmgr -n list cluster
    sacctmgr -i add cluster itttest >/dev/null 2>&1 || true
    start_daemon slurmctld /usr/sbin/slurmctld -D -i -f "$SLURM_CONF"
    wait_for slurmctld scontrol ping
    start_daemon slurmd /usr/sbin/slurmd -D -N "$host" -f "$SLURM_CONF"
    wait_for "the node to be idle" node_idle
    wait_for "accounting (sacct)" sacct -n -X -S now-1minute
    log "cluster up in $((SECONDS - t0))s (packages excluded): SLURM_CONF=$SLURM_CONF"
}

stop() {
    [ -d "$DIR" ] || return 0
    DIR=$(cd "$DIR" && pwd)
    [ -f "$DIR/pids/order" ] || return 0
    if [ -f "$DIR/slurm.conf" ] && [ -f "$DIR/pids/slurmctld" ]; then
        export SLURM_CONF="$DIR/slurm.conf"
        # Jobs first, while slurmd can still signal them.
        timeout 10 scancel --full --quiet --user=root 2>/dev/null || true
        local deadline=$((SECONDS + 15))
        while [ $SECONDS -lt $deadline ] && [ -n "$(timeout 5 squeue -h -t R,CG -o %i 2>/dev/null)" ]; do
            sleep 0.5
        done
    fi
    # SIGTERM to every daemon at once (newest first), SIGKILL to any still there after 10 s.
    local name pid i pids=()
    for name in $(tac "$DIR/pids/order"); do
        pid=$(cat "$DIR/pids/$name" 2>/dev/null) || continue
        kill -TERM "$pid" 2>/dev/null && pids+=("$pid")
    done
    for pid in "${pids[@]}"; do
        for i in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
    done
    for name in $(cat "$DIR/pids/order"); do rm -f "$DIR/pids/$name"; done
    : > "$DIR/pids/order"
}

[ $# -eq 2 ] || die "usage: $0 start|stop DIR"
DIR=$2
case $1 in
    start) start ;;
    stop) stop ;;
    *) die "usage: $0 start|stop DIR" ;;
esac
