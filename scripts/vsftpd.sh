#!/usr/bin/env bash
# Starts a local vsftpd with explicit FTPS on 127.0.0.1:2121 for the brightbox-ftp tests.
#
# Usage (as root on Debian 12): scripts/vsftpd.sh [STATE_DIR]
#
# STATE_DIR defaults to $BRIGHTBOX_VSFTPD_STATE or /tmp/brightbox-vsftpd. The script is idempotent:
# it installs vsftpd only when it is missing, reuses the user's password and the certificates
# from an earlier run, restarts the vsftpd it started before, and rewrites STATE_DIR/env:
#
#   source /tmp/brightbox-vsftpd/env
#   cargo test -p brightbox-ftp --test vsftpd -- --include-ignored
#
# vsftpd 3.0.3 (Debian 12) has no per-version switches above ssl_tlsv1, so TLS 1.2 and 1.3 are
# both enabled. vsftpd requires TLS for login and data (force_local_*_ssl) and rejects data connections that
# do not resume the control connection's TLS session (require_ssl_reuse=YES).
set -euo pipefail

STATE_DIR="${1:-${BRIGHTBOX_VSFTPD_STATE:-/tmp/brightbox-vsftpd}}"
FTP_USER=bbftp
LISTEN_ADDRESS=127.0.0.1
LISTEN_PORT=2121
PASV_MIN_PORT=30000
PASV_MAX_PORT=30100
SECURE_CHROOT_DIR=/var/run/vsftpd/empty

log() { echo "vsftpd.sh: $*" >&2; }

if [[ "$(id -u)" -ne 0 ]]; then
    log "must run as root (it installs vsftpd and creates the user ${FTP_USER})"
    exit 1
fi

mkdir -p "$STATE_DIR"
chmod 0755 "$STATE_DIR"

# 1. Install vsftpd without letting the package start its own daemon: the Debian default
#    configuration listens on port 21 of every interface.
if ! command -v vsftpd >/dev/null 2>&1 && [[ ! -x /usr/sbin/vsftpd ]]; then
    log "installing vsftpd"
    created_policy=no
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 0755 /usr/sbin/policy-rc.d
        created_policy=yes
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq vsftpd >/dev/null
    if [[ "$created_policy" == yes ]]; then
        rm -f /usr/sbin/policy-rc.d
    fi
fi
VSFTPD_BIN="$(command -v vsftpd || echo /usr/sbin/vsftpd)"

# 2. Local user with a shell listed in /etc/shells (PAM's pam_shells rejects others).
if ! grep -qx /bin/bash /etc/shells; then
    echo /bin/bash >>/etc/shells
fi
if ! id "$FTP_USER" >/dev/null 2>&1; then
    log "creating user ${FTP_USER}"
    useradd --create-home --shell /bin/bash "$FTP_USER"
fi
FTP_ROOT="$(getent passwd "$FTP_USER" | cut -d: -f6)"
mkdir -p "$FTP_ROOT/incoming"
chown "$FTP_USER:$FTP_USER" "$FTP_ROOT" "$FTP_ROOT/incoming"

PASSWORD_FILE="$STATE_DIR/password"
if [[ ! -s "$PASSWORD_FILE" ]]; then
    (umask 077 && openssl rand -hex 16 >"$PASSWORD_FILE")
fi
FTP_PASSWORD="$(cat "$PASSWORD_FILE")"
echo "${FTP_USER}:${FTP_PASSWORD}" | chpasswd

# 3. A throwaway CA and a leaf certificate signed by it. rustls rejects a CA certificate used as
#    the server's end-entity certificate, so the leaf carries CA:FALSE.
CA_KEY="$STATE_DIR/ca.key"
CA_PEM="$STATE_DIR/ca.pem"
LEAF_KEY="$STATE_DIR/server.key"
LEAF_PEM="$STATE_DIR/server.pem"
if [[ ! -s "$CA_PEM" || ! -s "$LEAF_PEM" || ! -s "$LEAF_KEY" ]] \
    || ! openssl verify -CAfile "$CA_PEM" "$LEAF_PEM" >/dev/null 2>&1 \
    || ! openssl x509 -checkend 86400 -noout -in "$LEAF_PEM" >/dev/null 2>&1; then
    log "creating test CA and server certificate in ${STATE_DIR}"
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 \
        -keyout "$CA_KEY" -out "$CA_PEM" \
        -subj "/CN=brightbox-ftp test CA" \
        -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    openssl req -new -newkey rsa:2048 -nodes \
        -keyout "$LEAF_KEY" -out "$STATE_DIR/server.csr" \
        -subj "/CN=localhost" 2>/dev/null
    cat >"$STATE_DIR/server.ext" <<'EOF'
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,IP:127.0.0.1
EOF
    openssl x509 -req -days 30 -in "$STATE_DIR/server.csr" \
        -CA "$CA_PEM" -CAkey "$CA_KEY" -CAcreateserial \
        -extfile "$STATE_DIR/server.ext" -out "$LEAF_PEM" 2>/dev/null
    rm -f "$STATE_DIR/server.csr"
fi
chmod 0600 "$CA_KEY" "$LEAF_KEY"
chmod 0644 "$CA_PEM" "$LEAF_PEM"

# 4. vsftpd configuration. vsftpd checks that secure_chroot_dir exists and is owned by root.
mkdir -p "$SECURE_CHROOT_DIR"
chown root:root "$SECURE_CHROOT_DIR"
chmod 0755 "$SECURE_CHROOT_DIR"

CONF="$STATE_DIR/vsftpd.conf"
cat >"$CONF" <<EOF
listen=YES
listen_ipv6=NO
listen_address=${LISTEN_ADDRESS}
listen_port=${LISTEN_PORT}
background=NO
seccomp_sandbox=NO
isolate=NO
isolate_network=NO
secure_chroot_dir=${SECURE_CHROOT_DIR}
pam_service_name=vsftpd

anonymous_enable=NO
local_enable=YES
write_enable=YES
local_umask=022
chroot_local_user=YES
allow_writeable_chroot=YES

connect_from_port_20=NO
pasv_enable=YES
pasv_address=${LISTEN_ADDRESS}
pasv_min_port=${PASV_MIN_PORT}
pasv_max_port=${PASV_MAX_PORT}

ssl_enable=YES
allow_anon_ssl=NO
force_local_logins_ssl=YES
force_local_data_ssl=YES
require_ssl_reuse=YES
ssl_sslv2=NO
ssl_sslv3=NO
ssl_tlsv1=NO
ssl_ciphers=HIGH
rsa_cert_file=${LEAF_PEM}
rsa_private_key_file=${LEAF_KEY}

xferlog_enable=YES
xferlog_std_format=NO
log_ftp_protocol=YES
debug_ssl=YES
vsftpd_log_file=${STATE_DIR}/vsftpd.log
EOF

# 5. (Re)start the vsftpd this script started before, identified by its pid file.
PID_FILE="$STATE_DIR/vsftpd.pid"
if [[ -s "$PID_FILE" ]]; then
    old_pid="$(cat "$PID_FILE")"
    if kill -0 "$old_pid" 2>/dev/null && grep -q vsftpd "/proc/$old_pid/cmdline" 2>/dev/null; then
        log "stopping the earlier vsftpd (pid ${old_pid})"
        kill "$old_pid"
        for _ in $(seq 1 50); do
            kill -0 "$old_pid" 2>/dev/null || break
            sleep 0.1
        done
    fi
    rm -f "$PID_FILE"
fi

port_accepts() {
    (exec 3<>"/dev/tcp/${LISTEN_ADDRESS}/${LISTEN_PORT}") 2>/dev/null
}

if port_accepts; then
    log "port ${LISTEN_ADDRESS}:${LISTEN_PORT} is already in use by another process"
    exit 1
fi

# vsftpd writes its start-up errors ("500 OOPS: ...") to file descriptor 0, so that descriptor is
# opened read-write on the output file.
setsid nohup "$VSFTPD_BIN" "$CONF" >"$STATE_DIR/vsftpd.out" 2>&1 0<>"$STATE_DIR/vsftpd.out" &
echo $! >"$PID_FILE"

for _ in $(seq 1 100); do
    if port_accepts; then
        break
    fi
    if ! kill -0 "$(cat "$PID_FILE")" 2>/dev/null; then
        log "vsftpd exited at start; its output follows"
        cat "$STATE_DIR/vsftpd.out" >&2
        exit 1
    fi
    sleep 0.1
done
if ! port_accepts; then
    log "vsftpd did not accept connections on ${LISTEN_ADDRESS}:${LISTEN_PORT} within 10 s"
    exit 1
fi

# 6. Connection details for the tests.
(
    umask 077
    cat >"$STATE_DIR/env" <<EOF
export BRIGHTBOX_TEST_VSFTPD_ADDR=${LISTEN_ADDRESS}:${LISTEN_PORT} BRIGHTBOX_TEST_VSFTPD_USER=${FTP_USER} BRIGHTBOX_TEST_VSFTPD_PASSWORD=${FTP_PASSWORD} BRIGHTBOX_TEST_VSFTPD_CA=${CA_PEM} BRIGHTBOX_TEST_VSFTPD_ROOT=${FTP_ROOT}
EOF
)
log "vsftpd (pid $(cat "$PID_FILE")) accepts FTPS on ${LISTEN_ADDRESS}:${LISTEN_PORT}; source ${STATE_DIR}/env"
