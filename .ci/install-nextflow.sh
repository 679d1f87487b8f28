#!/usr/bin/env bash
# Install Nextflow without its self-downloading launcher.
#
# The official `nextflow` launcher fetches its jar from GitHub at first use, which CI machines
# and many clusters cannot reach. Every jar Nextflow needs is on Maven Central, so Maven resolves
# them into a cache directory and a small wrapper script starts `nextflow.cli.Launcher` from them.
#
#   .ci/install-nextflow.sh            # prints the directory holding the `nextflow` wrapper
#   export PATH="$(.ci/install-nextflow.sh):$PATH"
#
# Environment:
#   VAEBIN_CACHE        cache root (default: $HOME/.cache/vaebin)
#   NXF_INSTALL_VERSION Nextflow release (default: 24.10.0; 25.x misses jars on Maven Central)
#
# Idempotent: a second run finds the marker of a complete install and only checks the wrapper.
# Safe under CI=true with no stdin: nothing prompts, apt runs non-interactively.
set -euo pipefail

readonly nextflow_version="${NXF_INSTALL_VERSION:-24.10.0}"
readonly cache_root="${VAEBIN_CACHE:-${HOME}/.cache/vaebin}"
readonly install_dir="${cache_root}/nextflow-${nextflow_version}"
readonly lib_dir="${install_dir}/lib"
readonly bin_dir="${cache_root}/bin"
readonly nxf_home="${cache_root}/nxf-home"
readonly marker="${lib_dir}/.complete"

log() { printf 'install-nextflow: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

java_major_version() {
    # `java -version` prints e.g. `openjdk version "17.0.15" 2025-04-15` (or "1.8.0_392" for 8).
    local version
    version="$(java -version 2>&1 | sed -n 's/.* version "\([^"]*\)".*/\1/p' | head -n 1)"
    case "${version}" in
        1.*) echo "${version}" | cut -d. -f2 ;;
        *) echo "${version%%[.+-]*}" ;;
    esac
}

ensure_java_and_maven() {
    if command -v java >/dev/null 2>&1 && command -v mvn >/dev/null 2>&1; then
        return 0
    fi
    command -v apt-get >/dev/null 2>&1 \
        || die "java and mvn are required; install a JRE (>= 11) and Maven, then rerun"
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 || die "java/mvn missing and not root: install default-jre-headless and maven"
        sudo="sudo -n"
    fi
    log "installing default-jre-headless and maven with apt-get"
    ${sudo} env DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null >&2
    ${sudo} env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        default-jre-headless maven </dev/null >&2
}

resolve_jars() {
    work_dir="$(mktemp -d "${cache_root}/.resolve.XXXXXX")"
    trap 'rm -rf "${work_dir}"' EXIT
    cat >"${work_dir}/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>vaebin.ci</groupId>
  <artifactId>nextflow-runtime</artifactId>
  <version>${nextflow_version}</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>io.nextflow</groupId>
      <artifactId>nextflow</artifactId>
      <version>${nextflow_version}</version>
    </dependency>
  </dependencies>
</project>
EOF
    log "resolving io.nextflow:nextflow:${nextflow_version} and its dependencies from Maven Central"
    mvn -B -q -Dstyle.color=never -f "${work_dir}/pom.xml" \
        -Dmaven.repo.local="${work_dir}/m2" \
        dependency:copy-dependencies \
        -DincludeScope=runtime \
        -DoutputDirectory="${work_dir}/lib" </dev/null >&2 \
        || die "Maven could not resolve io.nextflow:nextflow:${nextflow_version}"
    [ -f "${work_dir}/lib/nextflow-${nextflow_version}.jar" ] \
        || die "nextflow-${nextflow_version}.jar missing after resolution"
    ls "${work_dir}/lib" >"${work_dir}/lib/.complete"
    # Replace the whole directory at once so an interrupted run never leaves a half library.
    rm -rf "${lib_dir}"
    mkdir -p "${install_dir}"
    mv "${work_dir}/lib" "${lib_dir}"
    rm -rf "${work_dir}"
}

write_wrapper() {
    local wrapper="${bin_dir}/nextflow"
    local staged
    mkdir -p "${bin_dir}" "${nxf_home}"
    staged="$(mktemp "${bin_dir}/.nextflow.XXXXXX")"
    # Nextflow serialises task records into its resume cache with Kryo, which reflects into
    # java.util and friends. On Java >= 9 that needs these packages opened to the unnamed module;
    # without them the cache writes fail silently (they run in a GPars agent that swallows the
    # error) and `-resume` finds no cached task. The official launcher passes the same kind of flags.
    local opened_packages=(
        java.lang java.lang.reflect java.io java.nio java.net java.text
        java.util java.util.concurrent java.util.concurrent.atomic java.util.concurrent.locks
        java.util.regex sun.nio.ch sun.nio.fs
        sun.net.www.protocol.http sun.net.www.protocol.https
        sun.net.www.protocol.ftp sun.net.www.protocol.file
        jdk.internal.misc jdk.internal.vm
    )
    local add_opens="" package
    for package in "${opened_packages[@]}"; do
        add_opens+="    --add-opens=java.base/${package}=ALL-UNNAMED"$'\n'
    done
    cat >"${staged}" <<EOF
#!/usr/bin/env bash
# Nextflow ${nextflow_version} from Maven Central jars; written by .ci/install-nextflow.sh.
# Override with NXF_HOME, NXF_OFFLINE, NXF_OPTS (extra JVM options, applied last), JAVA_CMD.
export NXF_HOME="\${NXF_HOME:-${nxf_home}}"
export NXF_OFFLINE="\${NXF_OFFLINE:-true}"
export NXF_DISABLE_CHECK_LATEST="\${NXF_DISABLE_CHECK_LATEST:-true}"
java_cmd="\${JAVA_CMD:-java}"
command -v "\${java_cmd}" >/dev/null 2>&1 || { echo "nextflow: java not found (set JAVA_CMD)" >&2; exit 127; }
jvm_options=(
    -Djava.awt.headless=true
    # C1-only JIT: Nextflow orchestrates; start-up time matters more than compiled-code speed.
    -XX:+TieredCompilation -XX:TieredStopAtLevel=1
    # Kryo, the resume-cache serialiser, reflects into these JDK packages (see the installer).
${add_opens})
# shellcheck disable=SC2086  # NXF_OPTS is a space separated list of options
exec "\${java_cmd}" "\${jvm_options[@]}" \${NXF_OPTS:-} \\
    -cp '${lib_dir}/*' nextflow.cli.Launcher "\$@"
EOF
    chmod 755 "${staged}"
    if [ -f "${wrapper}" ] && cmp -s "${staged}" "${wrapper}"; then
        rm -f "${staged}"
    else
        mv -f "${staged}" "${wrapper}"
        log "wrote ${wrapper}"
    fi
}

main() {
    mkdir -p "${cache_root}"
    if [ -f "${marker}" ] && [ -f "${lib_dir}/nextflow-${nextflow_version}.jar" ]; then
        command -v java >/dev/null 2>&1 || ensure_java_and_maven
    else
        ensure_java_and_maven
        resolve_jars
    fi
    local major
    major="$(java_major_version)"
    [ -n "${major}" ] && [ "${major}" -ge 11 ] \
        || die "Nextflow ${nextflow_version} needs Java >= 11 (found: ${major:-unknown})"
    write_wrapper
    printf '%s\n' "${bin_dir}"
}

main "$@"
