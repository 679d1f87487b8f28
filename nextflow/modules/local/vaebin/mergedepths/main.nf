process VAEBIN_MERGEDEPTHS {
    tag "$meta.id"
    label 'process_single'

    conda "${moduleDir}/environment.yml"
    container "${ workflow.containerEngine in ['singularity', 'apptainer'] && !task.ext.singularity_pull_docker_container
        ? (task.ext.singularity_image ?: 'https://depot.galaxyproject.org/singularity/vaebin-rs:0.1.0--0')
        : (task.ext.docker_image ?: 'biocontainers/vaebin-rs:0.1.0--0') }"

    input:
    tuple val(meta), path(depths, stageAs: 'depths/?/*')

    output:
    tuple val(meta), path("${prefix}.depth.tsv"), emit: depth
    tuple val("${task.process}"), val('vaebin-rs'), eval("vaebin-rs --version | sed 's/^vaebin-rs //; s/ .*//'"), emit: versions_vaebin_rs, topic: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    prefix = task.ext.prefix ?: "${meta.id}"
    // Sample columns come out in the order the tables are given; callers sort them.
    """
    vaebin-rs merge-depths \\
        ${depths} \\
        --out ${prefix}.depth.tsv \\
        ${args}
    """

    stub:
    prefix = task.ext.prefix ?: "${meta.id}"
    // Same contig rows as the first table, then the sample columns of every table side by side.
    """
    awk -v OFS='\\t' '
        FNR == 1 { table++ }
        {
            if (table == 1) leading[FNR] = \$1 OFS \$2 OFS \$3
            for (i = 4; i <= NF; i++) samples[FNR] = samples[FNR] OFS \$i
            if (FNR > rows) rows = FNR
        }
        END { for (row = 1; row <= rows; row++) print leading[row] samples[row] }
    ' ${depths} > ${prefix}.depth.tsv
    """
}
