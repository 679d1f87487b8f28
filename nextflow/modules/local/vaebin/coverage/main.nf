process VAEBIN_COVERAGE {
    tag "$meta.id"
    label 'process_medium'

    conda "${moduleDir}/environment.yml"
    container "${ workflow.containerEngine in ['singularity', 'apptainer'] && !task.ext.singularity_pull_docker_container
        ? (task.ext.singularity_image ?: 'https://depot.galaxyproject.org/singularity/vaebin-rs:0.1.0--0')
        : (task.ext.docker_image ?: 'biocontainers/vaebin-rs:0.1.0--0') }"

    input:
    tuple val(meta), path(contigs), path(bam)

    output:
    tuple val(meta), path("${prefix}.depth.tsv"), emit: depth
    tuple val("${task.process}"), val('vaebin-rs'), eval("vaebin-rs --version | sed 's/^vaebin-rs //; s/ .*//'"), emit: versions_vaebin_rs, topic: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    prefix = task.ext.prefix ?: "${meta.id}"
    // The depth table names its columns after the BAM path it was given; a link named after the
    // sample keeps the columns unique when samples' BAMs share a file name.
    """
    [ "${bam}" = "${prefix}.bam" ] || ln -sf "${bam}" "${prefix}.bam"

    vaebin-rs coverage \\
        --contigs ${contigs} \\
        --bam ${prefix}.bam \\
        --out ${prefix}.depth.tsv \\
        --threads ${task.cpus} \\
        ${args}
    """

    stub:
    prefix = task.ext.prefix ?: "${meta.id}"
    // A well-formed table with zero depth for every contig, so stub runs chain into merge and bin.
    """
    gzip -cdf ${contigs} | awk -v OFS='\\t' -v column="${prefix}.bam" '
        BEGIN { print "contigName", "contigLen", "totalAvgDepth", column, column "-var" }
        /^>/ { if (name != "") print name, length_bp, 0, 0, 0; name = substr(\$1, 2); length_bp = 0; next }
        { length_bp += length(\$0) }
        END { if (name != "") print name, length_bp, 0, 0, 0 }
    ' > ${prefix}.depth.tsv
    """
}
