process VAEBIN_BINREADS {
    tag "$meta.id"
    label 'process_high'
    label 'process_gpu'

    conda "${moduleDir}/environment.yml"
    container "${ workflow.containerEngine in ['singularity', 'apptainer'] && !task.ext.singularity_pull_docker_container
        ? ((task.accelerator ? task.ext.singularity_image_gpu : null) ?: task.ext.singularity_image
            ?: 'https://depot.galaxyproject.org/singularity/vaebin-rs:0.1.0--0')
        : ((task.accelerator ? task.ext.docker_image_gpu : null) ?: task.ext.docker_image
            ?: 'biocontainers/vaebin-rs:0.1.0--0') }"

    input:
    tuple val(meta), path(reads, stageAs: 'reads/?/*')

    output:
    tuple val(meta), path("${prefix}/read_clusters.tsv"), emit: clusters
    tuple val(meta), path("${prefix}/bins/*")           , emit: bins    , optional: true
    tuple val(meta), path("${prefix}/unbinned.*")       , emit: unbinned, optional: true
    tuple val(meta), path("${prefix}/summary.json")     , emit: summary
    tuple val(meta), path("${prefix}/model.pt")         , emit: model
    tuple val("${task.process}"), val('vaebin-rs'), eval("vaebin-rs --version | sed 's/^vaebin-rs //; s/ .*//'"), emit: versions_vaebin_rs, topic: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    prefix = task.ext.prefix ?: "${meta.id}"
    // One file per sample; each is staged in its own folder, so samples whose files share a name
    // do not collide (the tool names a sample after its file).
    def read_files = reads instanceof List ? reads : [reads]
    def device = task.accelerator ? 'cuda' : 'cpu'
    """
    export OMP_NUM_THREADS=${task.cpus}

    vaebin-rs bin-reads \\
        ${read_files.collect { file -> "--reads ${file}" }.join(' ')} \\
        --outdir ${prefix} \\
        --threads ${task.cpus} \\
        --device ${device} \\
        --bin-prefix ${prefix} \\
        ${args}
    """

    stub:
    prefix = task.ext.prefix ?: "${meta.id}"
    def read_files = reads instanceof List ? reads : [reads]
    def device = task.accelerator ? 'cuda' : 'cpu'
    // Every read goes to one bin. As in the real run, the bin keeps the qualities when every input
    // is FASTQ and is FASTA otherwise; model.pt is empty.
    """
    fastq=1
    for file in ${read_files.join(' ')}; do
        gzip -cdf "\$file" | awk 'NR == 1 { first = substr(\$0, 1, 1) } END { exit first == "@" ? 0 : 1 }' || fastq=0
    done
    suffix=\$( [ "\$fastq" = 1 ] && echo fq.gz || echo fa.gz )

    mkdir -p ${prefix}/bins
    for file in ${read_files.join(' ')}; do
        gzip -cdf "\$file" | awk -v fastq="\$fastq" '
            NR == 1 { in_fastq = substr(\$0, 1, 1) == "@" }
            in_fastq && NR % 4 == 1 { print (fastq ? \$0 : ">" substr(\$0, 2)); next }
            in_fastq && NR % 4 == 2 { print; next }
            in_fastq { if (fastq) print; next }
            { print }
        '
    done | gzip -c > ${prefix}/bins/${prefix}.1.\$suffix
    printf '' | gzip -c > ${prefix}/unbinned.\$suffix
    gzip -cd ${prefix}/bins/${prefix}.1.\$suffix | awk -v OFS='\\t' -v bin="${prefix}.1" -v fastq="\$fastq" '
        BEGIN { print "clustername", "readname" }
        (fastq && NR % 4 == 1) || (!fastq && /^>/) { print bin, substr(\$1, 2) }
    ' > ${prefix}/read_clusters.tsv
    printf '{"stub": true, "mode": "reads", "device": "%s", "bins": 1}\\n' "${device}" > ${prefix}/summary.json
    touch ${prefix}/model.pt
    """
}
