#!/bin/sh
# Hardens a Debian 12 image to the CIS Debian Linux 12 Benchmark v1.1.0, Level 1 Server, as
# checked by Bakery's built-in suite `cis: {benchmark: debian-12}`. Bakery runs it as root on
# the builder (examples/local/cis/bakery.yml); it also runs by hand on any Debian 12 host.
#
# The work is split into named steps, each covering a group of controls (listed beside it).
# BAKERY_CIS_SKIP="sshd sysctl" leaves steps out, to see what a missing step costs.
#
# Settings a site changes (keep them in line with the pipeline's `cis: {variables: ...}`):
ADMIN_USER=${ADMIN_USER:-admin}       # the account Bakery's probe logs in as (verify.probe.ssh_user)
SSH_GROUP=${SSH_GROUP:-sshusers}      # sshd admits members of this group only (5.1.4)
SU_GROUP=${SU_GROUP:-sugroup}         # the empty group pam_wheel requires for su (5.2.7)
BANNER=${BANNER:-"Authorized users only. All activity may be monitored and reported."}
NTP_SERVERS=${NTP_SERVERS:-"0.debian.pool.ntp.org 1.debian.pool.ntp.org"}
NTP_FALLBACK=${NTP_FALLBACK:-"2.debian.pool.ntp.org 3.debian.pool.ntp.org"}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${SECURITY_MIRROR:-http://security.debian.org/debian-security}
UPGRADE=${UPGRADE:-yes}               # install pending updates (1.2.2.1); "no" for quick trials
GRUB_SUPERUSER=${GRUB_SUPERUSER:-root} # who may edit boot entries at the console (1.4.1)
# A hash from `grub-mkpasswd-pbkdf2` for GRUB_SUPERUSER. Without one, a random password is set
# and kept nowhere: nobody edits a cloud image's boot entries at its console.
GRUB_PASSWORD_HASH=${GRUB_PASSWORD_HASH:-}

set -eu
export DEBIAN_FRONTEND=noninteractive
SKIP=" ${BAKERY_CIS_SKIP:-} "

# step NAME: runs the function harden_NAME unless NAME is in BAKERY_CIS_SKIP.
step() {
  case "$SKIP" in
    *" $1 "*) echo "== $1: left out (BAKERY_CIS_SKIP)" ;;
    *) echo "== $1"; "harden_$1" ;;
  esac
}

# put FILE MODE: writes standard input to FILE with permission bits MODE, owned by root.
put() {
  mkdir -p "$(dirname "$1")"
  cat > "$1"
  chown root:root "$1"
  chmod "$2" "$1"
}

# setkey FILE KEY VALUE: sets a whitespace-separated `KEY VALUE` line (login.defs style),
# replacing an uncommented one or appending it.
setkey() {
  if grep -Eq "^[[:space:]]*$2[[:space:]]" "$1"; then
    sed -i -E "s|^[[:space:]]*$2[[:space:]].*|$2\t$3|" "$1"
  else
    printf '%s\t%s\n' "$2" "$3" >> "$1"
  fi
}

# 1.2.1.x, 1.2.2.1 (manual: reviewed by whoever owns this script), 1.3.1.1, 2.3.1.1,
# 4.3.1, 5.3.1.x, 6.1.3.1, 6.3.1: the packages the other steps configure, updates included.
harden_packages() {
  # Security updates come from their own suite; a stock minimal image lists only the main one.
  put /etc/apt/sources.list 0644 <<EOF
deb $MIRROR bookworm main
deb $MIRROR bookworm-updates main
deb $SECURITY_MIRROR bookworm-security main
EOF
  # dpkg's fsync after every file costs minutes on an emulated disk; the image is captured
  # after a clean shutdown, which writes everything out.
  apt="apt-get -y -qq -o Dpkg::Options::=--force-unsafe-io"
  # Services start when the image boots, not on the builder (each start costs time emulated).
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod 0755 /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  # aide-common ships AIDE rules for some 190 applications (31_aide_*) and registers each with
  # ucf, which takes most of a bake when emulated; none of those applications is on this image.
  # Sites that add one add its rule to /etc/aide/aide.conf.d.
  echo 'path-exclude=/usr/share/aide/config/aide/aide.conf.d/31_aide_*' |
    put /etc/dpkg/dpkg.cfg.d/60-bakery-cis-aide 0644
  apt-get update -qq
  if [ "$UPGRADE" = yes ]; then $apt upgrade; fi
  $apt install --no-install-recommends \
    apparmor apparmor-utils \
    libpam-pwquality cracklib-runtime \
    nftables \
    systemd-timesyncd \
    rsyslog logrotate \
    aide aide-common
  # Services and clients the benchmark wants absent (2.1.x, 2.2.x); a minimal
  # image has none of them, an image built from a fuller one may.
  for p in autofs avahi-daemon isc-dhcp-server bind9 dnsmasq vsftpd slapd dovecot-imapd \
      dovecot-pop3d nfs-kernel-server ypserv cups rpcbind rsync samba snmpd tftpd-hpa squid \
      apache2 nginx xinetd nis rsh-client talk telnet inetutils-telnet ldap-utils ftp tnftp \
      bluez ufw iptables-persistent chrony; do
    if dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'ok installed'; then
      $apt purge "$p"
    fi
  done
  $apt autoremove --purge
  apt-get clean
  rm -f /usr/sbin/policy-rc.d
}

# 1.1.1.1-1.1.1.5, 1.1.1.9: filesystem drivers and USB storage cannot be loaded.
harden_modules() {
  {
    echo "# Kernel modules this image never needs (CIS 1.1.1.x); written by the Bakery CIS recipe."
    for m in cramfs freevxfs hfs hfsplus jffs2 usb-storage; do
      echo "install $m /bin/false"
      echo "blacklist $m"
    done
  } | put /etc/modprobe.d/bakery-cis.conf 0644
  for m in cramfs freevxfs hfs hfsplus jffs2 usb_storage; do
    modprobe -r "$m" 2>/dev/null || true
  done
}

# 1.1.2.1.x, 1.1.2.2.x: /tmp is a tmpfs of its own and /dev/shm is remounted, both with
# nodev, nosuid and noexec. (The /home, /var, /var/tmp and /var/log option controls apply only
# where those are separate filesystems; this single-disk image has none, and at Level 1 the
# benchmark does not require them.)
harden_mounts() {
  sed -i -E '\#^[^[:space:]]+[[:space:]]+(/tmp|/dev/shm)[[:space:]]#d' /etc/fstab
  cat >> /etc/fstab <<'EOF'
tmpfs /tmp tmpfs rw,nosuid,nodev,noexec,mode=1777,size=25% 0 0
tmpfs /dev/shm tmpfs rw,nosuid,nodev,noexec 0 0
EOF
}

# 1.3.1.3: AppArmor (the kernel's default security module on Debian) loads the profiles in
# /etc/apparmor.d at boot; those Debian ships are in enforce mode.
harden_apparmor() {
  systemctl enable apparmor.service
  # A profile someone switched to complain mode goes back to enforcing.
  rm -f /etc/apparmor.d/force-complain/*
}

# 1.3.1.2, 1.4.1, 1.4.2: the boot loader. Every kernel entry names AppArmor on its command
# line; editing an entry or opening GRUB's shell at the console takes the superuser's password,
# while the entries themselves still boot unattended; grub.cfg is root's alone (update-grub
# writes it 0600 once it holds a password, and 0444 otherwise).
harden_boot() {
  # Sorts after Bakery's own settings (bakery.cfg), which set the console on the same line.
  put /etc/default/grub.d/cis-hardening.cfg 0644 <<'EOF'
GRUB_CMDLINE_LINUX="$GRUB_CMDLINE_LINUX apparmor=1 security=apparmor"
EOF
  hash=$GRUB_PASSWORD_HASH
  if [ -z "$hash" ]; then
    pw=$(head -c 24 /dev/urandom | base64)
    hash=$(printf '%s\n%s\n' "$pw" "$pw" | grub-mkpasswd-pbkdf2 | awk '/grub\.pbkdf2\./ { print $NF }')
    unset pw
  fi
  case "$hash" in
    grub.pbkdf2.sha512.*) ;;
    *) echo "harden.sh: no GRUB password hash (grub-mkpasswd-pbkdf2 printed none)" >&2; exit 1 ;;
  esac
  put /etc/grub.d/01_cis_password 0700 <<EOF
#!/bin/sh
cat <<'CFG'
set superusers="$GRUB_SUPERUSER"
password_pbkdf2 $GRUB_SUPERUSER $hash
CFG
EOF
  # Debian's menu entries boot without the password (an image boots unattended); only
  # changing them needs it. 10_linux is a configuration file: package upgrades keep the edit.
  sed -i 's/^CLASS="--class gnu-linux --class gnu --class os"$/&\nCLASS="$CLASS --unrestricted" # CIS 1.4.1/' /etc/grub.d/10_linux
  grep -q -- '--unrestricted' /etc/grub.d/10_linux || {
    echo "harden.sh: /etc/grub.d/10_linux has no CLASS line to add --unrestricted to; without it, every boot would wait for the password" >&2
    exit 1
  }
  update-grub
  chown root:root /boot/grub/grub.cfg
  chmod 0600 /boot/grub/grub.cfg
}

# 1.6.1-1.6.6: warning banners that name no operating system, owned by root.
harden_banners() {
  for f in /etc/issue /etc/issue.net; do
    # Keep base-files upgrades from putting the release name back.
    dpkg-divert --quiet --local --rename --add "$f" 2>/dev/null || true
    printf '%s\n' "$BANNER" | put "$f" 0644
  done
  printf '%s\n' "$BANNER" | put /etc/motd 0644
}

# 1.5.1, 1.5.2, 3.3.1-3.3.11 (and 1.5.3's fs.suid_dumpable): kernel parameters, at boot and now.
harden_sysctl() {
  put /etc/sysctl.d/60-bakery-cis.conf 0644 <<'EOF'
# Kernel settings of the CIS Debian 12 benchmark, Level 1 Server; written by the Bakery CIS recipe.
# Memory and processes
kernel.randomize_va_space = 2
kernel.yama.ptrace_scope = 1
fs.suid_dumpable = 0
# This host routes nothing
net.ipv4.ip_forward = 0
net.ipv6.conf.all.forwarding = 0
net.ipv4.conf.all.send_redirects = 0
net.ipv4.conf.default.send_redirects = 0
# ICMP
net.ipv4.icmp_ignore_bogus_error_responses = 1
net.ipv4.icmp_echo_ignore_broadcasts = 1
net.ipv4.conf.all.accept_redirects = 0
net.ipv4.conf.default.accept_redirects = 0
net.ipv6.conf.all.accept_redirects = 0
net.ipv6.conf.default.accept_redirects = 0
net.ipv4.conf.all.secure_redirects = 0
net.ipv4.conf.default.secure_redirects = 0
# Spoofed and source-routed packets
net.ipv4.conf.all.rp_filter = 1
net.ipv4.conf.default.rp_filter = 1
net.ipv4.conf.all.accept_source_route = 0
net.ipv4.conf.default.accept_source_route = 0
net.ipv6.conf.all.accept_source_route = 0
net.ipv6.conf.default.accept_source_route = 0
net.ipv4.conf.all.log_martians = 1
net.ipv4.conf.default.log_martians = 1
net.ipv4.tcp_syncookies = 1
# Addresses come from DHCP, not from router advertisements
net.ipv6.conf.all.accept_ra = 0
net.ipv6.conf.default.accept_ra = 0
EOF
  sysctl -q -p /etc/sysctl.d/60-bakery-cis.conf
}

# 1.5.3: no core dumps of any process (limits and set-user-ID programs).
harden_coredumps() {
  put /etc/security/limits.d/60-bakery-cis.conf 0644 <<'EOF'
# No core dumps (CIS 1.5.3); written by the Bakery CIS recipe.
* hard core 0
EOF
}

# 2.3.1.1, 2.3.2.1, 2.3.2.2: systemd-timesyncd keeps the clock, with named servers.
harden_time() {
  put /etc/systemd/timesyncd.conf.d/60-bakery-cis.conf 0644 <<EOF
[Time]
NTP=$NTP_SERVERS
FallbackNTP=$NTP_FALLBACK
EOF
  systemctl enable systemd-timesyncd.service
}

# 4.1.1, 4.3.1-4.3.10: nftables, the benchmark's default firewall, drops what it does not
# know in every direction. In: SSH, ICMP, replies. Out: DNS, NTP, DHCP, HTTP(S), ICMP, replies.
harden_firewall() {
  put /etc/nftables.conf 0755 <<'EOF'
#!/usr/sbin/nft -f
# Host firewall of the Bakery CIS recipe: everything not allowed below is dropped.
flush ruleset

table inet filter {
	chain input {
		type filter hook input priority filter; policy drop;
		iif "lo" accept
		ip saddr 127.0.0.0/8 counter drop
		ip6 saddr ::1 counter drop
		ct state established,related accept
		ct state invalid drop
		meta l4proto { icmp, ipv6-icmp } accept
		tcp dport 22 ct state new accept
	}

	chain forward {
		type filter hook forward priority filter; policy drop;
	}

	chain output {
		type filter hook output priority filter; policy drop;
		oif "lo" accept
		ct state established,related accept
		meta l4proto { icmp, ipv6-icmp } accept
		udp dport { 53, 67, 123 } accept
		tcp dport { 53, 80, 443 } accept
	}
}
EOF
  nft -c -f /etc/nftables.conf
  systemctl enable nftables.service
}

# 5.1.4-5.1.22: sshd settings, in a drop-in read before anything else (sshd keeps the first
# value it reads). Root logs in no more; members of $SSH_GROUP do, with a key.
harden_sshd() {
  getent group "$SSH_GROUP" >/dev/null || groupadd --system "$SSH_GROUP"
  put /etc/ssh/sshd_config.d/00-bakery-cis.conf 0600 <<EOF
# sshd settings of the CIS Debian 12 benchmark, Level 1 Server; written by the Bakery CIS recipe.
AllowGroups $SSH_GROUP
Banner /etc/issue.net
Ciphers chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,aes128-gcm@openssh.com,aes256-ctr,aes192-ctr,aes128-ctr
MACs hmac-sha2-512-etm@openssh.com,hmac-sha2-256-etm@openssh.com,hmac-sha2-512,hmac-sha2-256
KexAlgorithms sntrup761x25519-sha512@openssh.com,curve25519-sha256,curve25519-sha256@libssh.org,ecdh-sha2-nistp521,ecdh-sha2-nistp384,ecdh-sha2-nistp256,diffie-hellman-group-exchange-sha256,diffie-hellman-group16-sha512,diffie-hellman-group18-sha512,diffie-hellman-group14-sha256
ClientAliveInterval 15
ClientAliveCountMax 3
HostbasedAuthentication no
IgnoreRhosts yes
LoginGraceTime 60
LogLevel VERBOSE
MaxAuthTries 4
MaxSessions 10
MaxStartups 10:30:60
PasswordAuthentication no
PermitEmptyPasswords no
PermitRootLogin no
PermitUserEnvironment no
UsePAM yes
EOF
  /usr/sbin/sshd -t
}

# 5.2.1-5.2.6: sudo is installed (the base has it), runs commands on their own pseudo-terminal
# and logs to a file of its own.
harden_sudo() {
  put /etc/sudoers.d/60-bakery-cis 0440 <<'EOF'
# sudo settings of the CIS Debian 12 benchmark; written by the Bakery CIS recipe.
Defaults use_pty
Defaults logfile="/var/log/sudo.log"
Defaults timestamp_timeout=15
EOF
  visudo -c -q
}

# 5.2.7: su works for root only: pam_wheel requires membership of an empty group.
harden_su() {
  getent group "$SU_GROUP" >/dev/null || groupadd --system "$SU_GROUP"
  if ! grep -Eq '^[[:space:]]*auth[[:space:]]+required[[:space:]]+pam_wheel\.so' /etc/pam.d/su; then
    sed -i "/^[[:space:]]*auth[[:space:]].*pam_rootok\.so/a auth       required   pam_wheel.so use_uid group=$SU_GROUP" /etc/pam.d/su
  fi
}

# 5.3.2.x, 5.3.3.x: the common PAM stacks lock accounts after failed logins, check password
# quality and history, and hash with yescrypt; built by pam-auth-update from profiles.
harden_pam() {
  # Debian's `unix` profile accepts empty passwords (nullok); this copy does not, and replaces it.
  put /usr/share/pam-configs/bakery-unix 0644 <<'EOF'
Name: Unix authentication without empty passwords (Bakery CIS recipe)
Default: no
Priority: 257
Auth-Type: Primary
Auth:
	[success=end default=ignore]	pam_unix.so try_first_pass
Auth-Initial:
	[success=end default=ignore]	pam_unix.so
Account-Type: Primary
Account:
	[success=end new_authtok_reqd=done default=ignore]	pam_unix.so
Account-Initial:
	[success=end new_authtok_reqd=done default=ignore]	pam_unix.so
Session-Type: Additional
Session:
	required	pam_unix.so
Session-Initial:
	required	pam_unix.so
Password-Type: Primary
Password:
	[success=end default=ignore]	pam_unix.so obscure use_authtok try_first_pass yescrypt
Password-Initial:
	[success=end default=ignore]	pam_unix.so obscure yescrypt
EOF
  # pam_faillock: checked before the password (preauth), counting after a wrong one (authfail),
  # and the count reset by the account stack after a successful login.
  put /usr/share/pam-configs/bakery-faillock 0644 <<'EOF'
Name: Lock an account after repeated failed logins (Bakery CIS recipe)
Default: yes
Priority: 1100
Auth-Type: Primary
Auth:
	requisite	pam_faillock.so preauth
Account-Type: Additional
Account:
	required	pam_faillock.so
EOF
  put /usr/share/pam-configs/bakery-faillock-authfail 0644 <<'EOF'
Name: Count failed logins for pam_faillock (Bakery CIS recipe)
Default: yes
Priority: 0
Auth-Type: Primary
Auth:
	[default=die]	pam_faillock.so authfail
EOF
  # pam_pwhistory: after pam_pwquality has read the new password, before pam_unix stores it.
  put /usr/share/pam-configs/bakery-pwhistory 0644 <<'EOF'
Name: Refuse recently used passwords (Bakery CIS recipe)
Default: yes
Priority: 1000
Password-Type: Primary
Password:
	requisite	pam_pwhistory.so remember=24 enforce_for_root use_authtok
EOF
  put /etc/security/faillock.conf 0644 <<'EOF'
# pam_faillock settings (CIS 5.3.3.1.x); written by the Bakery CIS recipe.
deny = 5
unlock_time = 900
EOF
  put /etc/security/pwquality.conf.d/60-bakery-cis.conf 0644 <<'EOF'
# Password quality (CIS 5.3.3.2.x); written by the Bakery CIS recipe.
minlen = 14
minclass = 4
difok = 2
maxrepeat = 3
maxsequence = 3
dictcheck = 1
enforcing = 1
enforce_for_root
EOF
  pam-auth-update --package --remove unix --enable bakery-unix bakery-faillock \
    bakery-faillock-authfail pwquality bakery-pwhistory
  # Refuse to go on with a stack that lost a piece (pam-auth-update falls back silently).
  for want in 'auth.*pam_faillock.so preauth' 'auth.*pam_unix.so' 'auth.*pam_faillock.so authfail'; do
    grep -Eq "$want" /etc/pam.d/common-auth || { echo "common-auth lacks: $want" >&2; exit 1; }
  done
  for want in pam_pwquality.so pam_pwhistory.so 'pam_unix.so.*use_authtok'; do
    grep -Eq "$want" /etc/pam.d/common-password || { echo "common-password lacks: $want" >&2; exit 1; }
  done
  if grep -Eq '^[^#]*pam_unix\.so.*nullok' /etc/pam.d/common-*; then
    echo "a common PAM stack still accepts empty passwords" >&2; exit 1
  fi
}

# 5.4.1.1, 5.4.1.3-5.4.1.5: password ageing and hashing for new and existing accounts.
harden_passwords() {
  setkey /etc/login.defs PASS_MAX_DAYS 365
  setkey /etc/login.defs PASS_MIN_DAYS 1
  setkey /etc/login.defs PASS_WARN_AGE 7
  setkey /etc/login.defs ENCRYPT_METHOD YESCRYPT
  useradd -D -f 45
  # Accounts that have a password get the same limits.
  awk -F: '$2 ~ /^\$/ { print $1 }' /etc/shadow | while read -r u; do
    chage --maxdays 365 --mindays 1 --warndays 7 --inactive 45 "$u"
  done
}

# 5.4.3.2, 5.4.3.3 (and 5.4.2.6 for root): idle shells end, new files are private by default.
harden_shell() {
  setkey /etc/login.defs UMASK 027
  put /etc/profile.d/60-bakery-cis.sh 0644 <<'EOF'
# Shell defaults of the CIS Debian 12 benchmark; written by the Bakery CIS recipe.
# Files a user creates are not readable by others.
umask 027
# An interactive shell left idle for 15 minutes exits.
TMOUT=900
readonly TMOUT
export TMOUT
EOF
}

# 6.1.1.x, 6.1.3.x: rsyslog keeps the logs (the pipeline sets `log_system: rsyslog`), fed by
# journald, in files only root and adm can read; it listens to no other host.
harden_logging() {
  put /etc/systemd/journald.conf.d/60-bakery-cis.conf 0644 <<'EOF'
[Journal]
ForwardToSyslog=yes
Compress=yes
Storage=persistent
EOF
  put /etc/rsyslog.d/60-bakery-cis.conf 0644 <<'EOF'
# Log files readable by root and the adm group only (CIS 6.1.3.4); written by the Bakery CIS recipe.
$FileCreateMode 0640
EOF
  systemctl enable rsyslog.service
}

# 6.3.1, 6.3.2: AIDE checks the file system every day; and it watches the audit tools closely
# (6.3.3, a Level 2 control, cheap to meet here).
harden_aide() {
  put /etc/aide/aide.conf.d/99_bakery_audit_tools 0644 <<'EOF'
# The audit tools, with checksums and every attribute (CIS 6.3.3); written by the Bakery CIS recipe.
/usr/sbin/auditctl p+i+n+u+g+s+b+acl+xattrs+sha512
/usr/sbin/auditd p+i+n+u+g+s+b+acl+xattrs+sha512
/usr/sbin/ausearch p+i+n+u+g+s+b+acl+xattrs+sha512
/usr/sbin/aureport p+i+n+u+g+s+b+acl+xattrs+sha512
/usr/sbin/autrace p+i+n+u+g+s+b+acl+xattrs+sha512
/usr/sbin/augenrules p+i+n+u+g+s+b+acl+xattrs+sha512
EOF
  systemctl enable dailyaidecheck.timer
}

# 5.1.4, 7.2.9: the account Bakery's probe (and an operator) logs in with: in $SSH_GROUP,
# no password, a private home. cloud-init gives it its key and its sudo rule at boot.
harden_admin() {
  getent group "$SSH_GROUP" >/dev/null || groupadd --system "$SSH_GROUP"
  if ! id "$ADMIN_USER" >/dev/null 2>&1; then
    useradd --create-home --shell /bin/bash --groups "$SSH_GROUP" "$ADMIN_USER"
  else
    usermod --append --groups "$SSH_GROUP" "$ADMIN_USER"
  fi
  # It logs in with a key only: a password it does not have cannot expire and lock it out.
  chage --maxdays -1 --inactive -1 "$ADMIN_USER"
  chmod 0750 "$(getent passwd "$ADMIN_USER" | cut -d: -f6)"
}

# 5.1.1-5.1.3, 6.1.4.1, 7.1.x: ownership and modes of configuration, keys and logs.
harden_permissions() {
  chown root:root /etc/ssh/sshd_config
  chmod 0600 /etc/ssh/sshd_config
  find /etc/ssh/sshd_config.d -type f -name '*.conf' -exec chown root:root {} + -exec chmod 0600 {} +
  find /etc/ssh -maxdepth 1 -type f -name 'ssh_host_*_key' -exec chmod 0600 {} +
  find /etc/ssh -maxdepth 1 -type f -name 'ssh_host_*_key.pub' -exec chmod 0644 {} +
  # Logs written so far (dpkg, apt, cloud-init): no write for the group, nothing for others.
  find /var/log -type f -perm /0137 -exec chmod g-wx,o-rwx {} +
  chmod 0644 /etc/passwd /etc/group
  chmod 0640 /etc/shadow /etc/gshadow
  chown root:shadow /etc/shadow /etc/gshadow
}

step packages
step modules
step mounts
step apparmor
step boot
step banners
step sysctl
step coredumps
step time
step firewall
step sshd
step sudo
step su
step pam
step passwords
step shell
step logging
step aide
step admin
step permissions
echo "== done: hardened to CIS Debian 12 Level 1 Server"
