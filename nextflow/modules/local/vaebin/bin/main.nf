process VAEBIN_BIN {
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
    tuple val(meta), path(contigs), path(depth), path(bams, stageAs: 'bams/*')

    output:
    tuple val(meta), path("${prefix}/bins/*.fna.gz")  , emit: bins    , optional: true
    tuple val(meta), path("${prefix}/clusters.tsv")   , emit: clusters
    tuple val(meta), path("${prefix}/*.binning")      , emit: binning
    tuple val(meta), path("${prefix}/unbinned.fna.gz"), emit: unbinned, optional: true
    tuple val(meta), path("${prefix}/bins.tsv")       , emit: bin_table
    tuple val(meta), path("${prefix}/summary.json")   , emit: summary
    tuple val(meta), path("${prefix}/model.pt")       , emit: model   , optional: true
    tuple val("${task.process}"), val('vaebin-rs'), eval("vaebin-rs --version | sed 's/^vaebin-rs //; s/ .*//'"), emit: versions_vaebin_rs, topic: versions

    when:
    task.ext.when == null || task.ext.when

    script:
    def args = task.ext.args ?: ''
    prefix = task.ext.prefix ?: "${meta.id}"
    def bam_list = bams instanceof List ? bams : [bams]
    def coverage = depth ? "--depth ${depth}" : bam_list.collect { bam -> "--bam ${bam}" }.join(' ')
    def device = task.accelerator ? 'cuda' : 'cpu'
    if (depth && bams) {
        error("VAEBIN_BIN '${meta.id}': give either a depth table or BAM files, not both")
    }
    if (!depth && !bams) {
        error("VAEBIN_BIN '${meta.id}': needs a depth table or at least one BAM file")
    }
    """
    export OMP_NUM_THREADS=${task.cpus}

    vaebin-rs bin \\
        --contigs ${contigs} \\
        ${coverage} \\
        --outdir ${prefix} \\
        --threads ${task.cpus} \\
        --device ${device} \\
        --bin-prefix ${prefix} \\
        ${args}
    """

    stub:
    prefix = task.ext.prefix ?: "${meta.id}"
    if (depth && bams) {
        error("VAEBIN_BIN '${meta.id}': give either a depth table or BAM files, not both")
    }
    if (!depth && !bams) {
        error("VAEBIN_BIN '${meta.id}': needs a depth table or at least one BAM file")
    }
    def device = task.accelerator ? 'cuda' : 'cpu'
    // Every contig goes to one bin; the files have the real names and formats (model.pt: empty).
    """
    mkdir -p ${prefix}/bins
    gzip -cdf ${contigs} | gzip -c > ${prefix}/bins/${prefix}.1.fna.gz
    printf '' | gzip -c > ${prefix}/unbinned.fna.gz
    gzip -cdf ${contigs} | awk -v OFS='\\t' -v bin="${prefix}.1" '
        BEGIN { print "clustername", "contigname" }
        /^>/ { print bin, substr(\$1, 2) }
    ' > ${prefix}/clusters.tsv
    {
        printf '@Version:0.9.1\\n@SampleID:%s\\n\\n@@SEQUENCEID\\tBINID\\n' "${meta.id}"
        awk -v OFS='\\t' 'NR > 1 { print \$2, \$1 }' ${prefix}/clusters.tsv
    } > ${prefix}/clusters.binning
    {
        printf 'bin\\tcontigs\\tbp\\tmarker_completeness\\tmarker_contamination\\tmarker_genes\\tmarker_extra_copies\\n'
        gzip -cdf ${contigs} | awk -v OFS='\\t' -v bin="${prefix}.1" '
            /^>/ { n++; next } { bp += length(\$0) }
            END { print bin, n, bp, "NA", "NA", "NA", "NA" }
        '
    } > ${prefix}/bins.tsv
    printf '{"stub": true, "device": "%s", "bins": 1}\\n' "${device}" > ${prefix}/summary.json
    touch ${prefix}/model.pt
    """
}
