//! vaebin-rs core: composition and coverage featurization. This file only holds the Python
//! bindings; the work lives in plain Rust modules that are tested without Python.

pub mod bam;
pub mod bins;
pub mod composition;
pub mod coverage;
pub mod errors;
pub mod kmer;
pub mod kmer_count;
pub mod mapped;
pub mod overlaps;
pub mod readcov;
pub mod seeds;
pub mod seqio;

#[cfg(feature = "python")]
mod python {
    use std::collections::HashMap;
    use std::path::PathBuf;

    use numpy::{PyArray1, PyArrayMethods, PyUntypedArrayMethods};
    use pyo3::exceptions::PyException;
    use pyo3::prelude::*;
    use pyo3::types::{PyBytes, PyDict};

    use crate::composition::{composition, CompositionMatrix, CompositionOptions};
    use crate::errors::CoreError;
    use crate::kmer;

    pyo3::create_exception!(
        _core,
        VaebinError,
        PyException,
        "Base class of vaebin-rs errors."
    );
    pyo3::create_exception!(
        _core,
        InputFileError,
        VaebinError,
        "A file is missing or unreadable."
    );
    pyo3::create_exception!(
        _core,
        FormatError,
        VaebinError,
        "A file's content is malformed."
    );
    pyo3::create_exception!(
        _core,
        InputDataError,
        VaebinError,
        "An input is well formed but unusable."
    );
    pyo3::create_exception!(
        _core,
        ParameterError,
        VaebinError,
        "A parameter is out of range."
    );

    fn to_python(err: CoreError) -> PyErr {
        let message = err.to_string();
        match err {
            CoreError::File { .. } => InputFileError::new_err(message),
            CoreError::Format { .. } => FormatError::new_err(message),
            CoreError::Input { .. } => InputDataError::new_err(message),
            CoreError::Parameter(_) => ParameterError::new_err(message),
        }
    }

    /// Names padded to one width, so Python views them as a numpy `S<width>` array.
    fn padded_names(names: &[u8], ends: &[usize]) -> (Vec<u8>, usize) {
        let mut width = 1;
        let mut start = 0;
        for &end in ends {
            width = width.max(end - start);
            start = end;
        }
        let mut out = vec![0u8; width * ends.len()];
        let mut start = 0;
        for (i, &end) in ends.iter().enumerate() {
            out[i * width..i * width + end - start].copy_from_slice(&names[start..end]);
            start = end;
        }
        (out, width)
    }

    #[pyfunction]
    #[pyo3(signature = (path, k=4, min_length=0, threads=None, normalize=true))]
    fn composition_arrays<'py>(
        py: Python<'py>,
        path: PathBuf,
        k: usize,
        min_length: u64,
        threads: Option<usize>,
        normalize: bool,
    ) -> PyResult<Bound<'py, PyDict>> {
        let options = CompositionOptions {
            k,
            min_length,
            threads,
            normalize,
        };
        let result = py
            .detach(|| composition(&path, &options))
            .map_err(to_python)?;
        let rows = result.rows();
        let columns = result.columns;
        let (names, width) = py.detach(|| padded_names(&result.names, &result.name_ends));
        let out = PyDict::new(py);
        match result.matrix {
            CompositionMatrix::Frequencies(values) => out.set_item(
                "matrix",
                PyArray1::from_vec(py, values).reshape([rows, columns])?,
            )?,
            CompositionMatrix::Counts(values) => out.set_item(
                "matrix",
                PyArray1::from_vec(py, values).reshape([rows, columns])?,
            )?,
        }
        out.set_item("lengths", PyArray1::from_vec(py, result.lengths))?;
        out.set_item("kmer_totals", PyArray1::from_vec(py, result.kmer_totals))?;
        out.set_item("names", PyBytes::new(py, &names))?;
        out.set_item("name_width", width)?;
        let stats = result.stats;
        out.set_item("records", stats.records)?;
        out.set_item("records_kept", stats.records_kept)?;
        out.set_item("records_too_short", stats.records_too_short)?;
        out.set_item("bases", stats.bases)?;
        out.set_item("bases_kept", stats.bases_kept)?;
        out.set_item("compressed", stats.compressed)?;
        Ok(out)
    }

    /// Names and lengths of every record of a FASTA/FASTQ file, checked by the reader's rules.
    #[pyfunction]
    fn sequence_names_and_lengths<'py>(
        py: Python<'py>,
        path: PathBuf,
    ) -> PyResult<Bound<'py, PyDict>> {
        let records = py
            .detach(|| crate::seqio::names_and_lengths(&path))
            .map_err(to_python)?;
        let mut names = Vec::new();
        let mut name_ends = Vec::with_capacity(records.names.len());
        for name in &records.names {
            names.extend_from_slice(name.as_bytes());
            name_ends.push(names.len());
        }
        let (names, width) = padded_names(&names, &name_ends);
        let lengths: Vec<i64> = records.lengths.iter().map(|&l| l as i64).collect();
        let out = PyDict::new(py);
        out.set_item("names", PyBytes::new(py, &names))?;
        out.set_item("name_width", width)?;
        out.set_item("lengths", PyArray1::from_vec(py, lengths))?;
        Ok(out)
    }

    /// Sequences of the named records of a FASTA/FASTQ file, in the order of `names`, read by
    /// the project's one sequence reader (marker-gene calling).
    #[pyfunction]
    fn selected_sequences<'py>(
        py: Python<'py>,
        path: PathBuf,
        names: Vec<String>,
    ) -> PyResult<Vec<Bound<'py, PyBytes>>> {
        let wanted: Vec<Vec<u8>> = names.into_iter().map(String::into_bytes).collect();
        let sequences = py
            .detach(|| crate::seqio::selected_sequences(&path, &wanted))
            .map_err(to_python)?;
        Ok(sequences.iter().map(|s| PyBytes::new(py, s)).collect())
    }

    /// Copies contigs into gzip FASTA files, one per output; `names` are fixed-width (padded with
    /// NUL bytes) and `outputs_of_names` gives each name's output index.
    #[pyfunction]
    fn write_bins(
        py: Python<'_>,
        contigs: PathBuf,
        names: &[u8],
        name_width: usize,
        outputs_of_names: Vec<usize>,
        outputs: Vec<PathBuf>,
    ) -> PyResult<Vec<u64>> {
        if name_width == 0 || names.len() != name_width * outputs_of_names.len() {
            return Err(ParameterError::new_err(
                "names and their outputs differ in number",
            ));
        }
        if outputs_of_names.iter().any(|&o| o >= outputs.len()) {
            return Err(ParameterError::new_err("an output index is out of range"));
        }
        let assignment: HashMap<Vec<u8>, usize> = names
            .chunks_exact(name_width)
            .map(|padded| {
                let end = padded.iter().position(|&b| b == 0).unwrap_or(padded.len());
                padded[..end].to_vec()
            })
            .zip(outputs_of_names)
            .collect();
        py.detach(|| crate::bins::write_bins(&contigs, &assignment, &outputs))
            .map_err(to_python)
    }

    #[pyfunction]
    fn kmer_labels(k: usize) -> PyResult<Vec<String>> {
        crate::composition::check_k(k).map_err(to_python)?;
        Ok(kmer::canonical_labels(k))
    }

    fn depth_mode(mode: &str) -> PyResult<crate::coverage::DepthMode> {
        match mode {
            "metabat" => Ok(crate::coverage::DepthMode::MetaBat),
            "mean" => Ok(crate::coverage::DepthMode::Mean),
            other => Err(ParameterError::new_err(format!(
                "depth mode must be 'metabat' or 'mean', got '{other}'"
            ))),
        }
    }

    /// Per-contig mean and variance of the depth in each BAM file (MetaBAT2 semantics).
    #[pyfunction]
    #[pyo3(signature = (contigs, bams, mode="metabat", min_identity=0.97, trim_edges=75, min_mapq=0, threads=None))]
    #[allow(clippy::too_many_arguments)]
    fn coverage_arrays<'py>(
        py: Python<'py>,
        contigs: PathBuf,
        bams: Vec<PathBuf>,
        mode: &str,
        min_identity: f64,
        trim_edges: i64,
        min_mapq: i64,
        threads: Option<usize>,
    ) -> PyResult<Bound<'py, PyDict>> {
        use crate::coverage::{coverage, CoverageOptions};
        let out_of_range = |what: &str, value: i64, max: i64| {
            ParameterError::new_err(format!("{what} must be between 0 and {max}, got {value}"))
        };
        if !(0..=u32::MAX as i64).contains(&trim_edges) {
            return Err(out_of_range("edge trimming", trim_edges, u32::MAX as i64));
        }
        if !(0..=255).contains(&min_mapq) {
            return Err(out_of_range("minimum MAPQ", min_mapq, 255));
        }
        let options = CoverageOptions {
            mode: depth_mode(mode)?,
            min_identity: min_identity as f32,
            trim_edges: trim_edges as u32,
            min_mapq: min_mapq as u8,
            threads,
        };
        if !(0.0..=1.0).contains(&min_identity) {
            return Err(ParameterError::new_err(format!(
                "minimum identity must be between 0 and 1, got {min_identity}"
            )));
        }
        let result = py
            .detach(|| coverage(&contigs, &bams, &options))
            .map_err(to_python)?;
        let rows = result.contigs.names.len();
        let samples = result.samples.len();
        let (means, variances) = py.detach(|| result.matrices());
        let out = PyDict::new(py);
        out.set_item("names", &result.contigs.names)?;
        out.set_item(
            "lengths",
            PyArray1::from_vec(py, result.contigs.lengths.clone()),
        )?;
        out.set_item(
            "means",
            PyArray1::from_vec(py, means).reshape([rows, samples])?,
        )?;
        out.set_item(
            "variances",
            PyArray1::from_vec(py, variances).reshape([rows, samples])?,
        )?;
        let edge_trims: Vec<u32> = result.samples.iter().map(|s| s.edge_trim).collect();
        out.set_item("edge_trims", PyArray1::from_vec(py, edge_trims))?;
        let stats = pyo3::types::PyList::empty(py);
        for sample in &result.samples {
            let counts = sample.stats;
            let entry = PyDict::new(py);
            entry.set_item("records", counts.records)?;
            entry.set_item("filtered_flags", counts.filtered_flags)?;
            entry.set_item("unmapped", counts.unmapped)?;
            entry.set_item("low_mapq", counts.low_mapq)?;
            entry.set_item("low_identity", counts.low_identity)?;
            entry.set_item("counted", counts.counted)?;
            entry.set_item("average_read_length", counts.average_read_length)?;
            stats.append(entry)?;
        }
        out.set_item("stats", stats)?;
        Ok(out)
    }

    /// MetaBAT's totalAvgDepth per contig from a contigs x samples matrix of mean depths.
    #[pyfunction]
    fn total_average_depths<'py>(
        py: Python<'py>,
        lengths: numpy::PyReadonlyArray1<'py, f64>,
        means: numpy::PyReadonlyArray2<'py, f64>,
        edge_trims: Vec<u32>,
    ) -> PyResult<Bound<'py, PyArray1<f32>>> {
        use numpy::PyUntypedArrayMethods;
        let lengths = lengths.as_slice()?;
        let shape = means.shape();
        if shape[0] != lengths.len() || shape[1] != edge_trims.len() {
            return Err(ParameterError::new_err(format!(
                "means are {} x {}, expected {} x {}",
                shape[0],
                shape[1],
                lengths.len(),
                edge_trims.len()
            )));
        }
        let means = means.as_slice()?;
        let totals =
            py.detach(|| crate::coverage::total_average_depths(lengths, means, &edge_trims));
        Ok(PyArray1::from_vec(py, totals))
    }

    /// Depth table body rows: name, then each value of the row printed like MetaBAT (`%g`).
    #[pyfunction]
    fn depth_table_rows(
        py: Python<'_>,
        names: Vec<String>,
        values: numpy::PyReadonlyArray2<'_, f64>,
    ) -> PyResult<String> {
        use numpy::PyUntypedArrayMethods;
        let columns = values.shape()[1];
        if values.shape()[0] != names.len() {
            return Err(ParameterError::new_err(format!(
                "{} names for {} rows",
                names.len(),
                values.shape()[0]
            )));
        }
        let values = values.as_slice()?;
        Ok(py.detach(|| crate::coverage::depth_table_rows(&names, values, columns)))
    }

    /// Long-read features of each read file (one per sample): composition, k-mer abundance
    /// histograms per sample and abundances; see `readcov`.
    #[pyfunction]
    #[pyo3(signature = (paths, k=15, composition_k=4, bins=32, bin_width=2, sampling=8, min_length=1000, solid_histograms=true, graph=false, graph_sampling=4, min_shared=3, max_group=64, max_neighbours=16, threads=None))]
    #[allow(clippy::too_many_arguments)]
    fn read_feature_arrays<'py>(
        py: Python<'py>,
        paths: Vec<PathBuf>,
        k: usize,
        composition_k: usize,
        bins: usize,
        bin_width: u32,
        sampling: u32,
        min_length: u64,
        solid_histograms: bool,
        graph: bool,
        graph_sampling: u32,
        min_shared: u32,
        max_group: u32,
        max_neighbours: u32,
        threads: Option<usize>,
    ) -> PyResult<Bound<'py, PyDict>> {
        use crate::overlaps::OverlapOptions;
        use crate::readcov::{read_features, ReadFeatureOptions};
        let options = ReadFeatureOptions {
            k,
            composition_k,
            bins,
            bin_width,
            sampling,
            min_length,
            solid_histograms,
            graph: graph.then_some(OverlapOptions {
                graph_sampling,
                min_shared,
                max_group,
                max_neighbours,
            }),
            threads,
        };
        let mut result = py
            .detach(|| read_features(&paths, &options))
            .map_err(to_python)?;
        let rows = result.reads();
        let samples = result.samples;
        let (names, width) = py.detach(|| padded_names(&result.names, &result.name_ends));
        let out = PyDict::new(py);
        out.set_item(
            "composition",
            PyArray1::from_vec(py, result.composition)
                .reshape([rows, result.composition_columns])?,
        )?;
        out.set_item(
            "histograms",
            PyArray1::from_vec(py, result.histograms).reshape([rows, samples * result.bins])?,
        )?;
        out.set_item(
            "abundance",
            PyArray1::from_vec(py, result.abundance).reshape([rows, samples])?,
        )?;
        out.set_item(
            "solid_fraction",
            PyArray1::from_vec(py, result.solid_fraction),
        )?;
        out.set_item("kmers", PyArray1::from_vec(py, result.kmers))?;
        out.set_item("lengths", PyArray1::from_vec(py, result.lengths))?;
        out.set_item("samples", PyArray1::from_vec(py, result.sample_of_read))?;
        out.set_item(
            "record_numbers",
            PyArray1::from_vec(py, result.record_numbers),
        )?;
        out.set_item("names", PyBytes::new(py, &names))?;
        out.set_item("name_width", width)?;
        out.set_item("table_bytes", result.table_bytes)?;
        out.set_item("seconds_profiles", result.seconds_profiles)?;
        if let Some(graph) = result.graph.take() {
            out.set_item("graph_offsets", PyArray1::from_vec(py, graph.offsets))?;
            out.set_item("graph_neighbours", PyArray1::from_vec(py, graph.neighbours))?;
            out.set_item("graph_shared", PyArray1::from_vec(py, graph.shared))?;
            out.set_item("seconds_graph", result.seconds_graph)?;
        }
        let stats = pyo3::types::PyList::empty(py);
        for (i, sample) in result.stats.iter().enumerate() {
            let entry = PyDict::new(py);
            entry.set_item("records", sample.records)?;
            entry.set_item("records_kept", sample.records_kept)?;
            entry.set_item("records_too_short", sample.records_too_short)?;
            entry.set_item("bases", sample.bases)?;
            entry.set_item("bases_kept", sample.bases_kept)?;
            entry.set_item("compressed", sample.compressed)?;
            entry.set_item("fastq", result.fastq[i])?;
            entry.set_item("kmers_counted", result.kmers_counted[i])?;
            entry.set_item("distinct_kmers", result.distinct_kmers[i])?;
            entry.set_item("seconds_reading", result.seconds_reading[i])?;
            entry.set_item("seconds_counting", result.seconds_counting[i])?;
            stats.append(entry)?;
        }
        out.set_item("stats", stats)?;
        Ok(out)
    }

    /// Copies reads into bin files; `outputs_of_records[f][r]` is the output index of record r
    /// of input f (every record, 0-based), or 2^32 - 1 for none.
    #[pyfunction]
    fn write_read_bins(
        py: Python<'_>,
        inputs: Vec<PathBuf>,
        outputs_of_records: Vec<numpy::PyReadonlyArray1<'_, u32>>,
        outputs: Vec<PathBuf>,
        fastq: bool,
    ) -> PyResult<Vec<u64>> {
        let per_input: Vec<Vec<u32>> = outputs_of_records
            .iter()
            .map(|a| a.as_slice().map(|s| s.to_vec()))
            .collect::<Result<_, _>>()?;
        if per_input
            .iter()
            .flatten()
            .any(|&o| o != crate::bins::NO_OUTPUT && o as usize >= outputs.len())
        {
            return Err(ParameterError::new_err("an output index is out of range"));
        }
        py.detach(|| crate::bins::write_read_bins(&inputs, &per_input, &outputs, fastq))
            .map_err(to_python)
    }

    /// The seed prefilter of the marker search (see `seeds`): built from each model's match
    /// state scores in bits (states x 20, `seeds::AMINO_ACIDS` order).
    #[pyclass(frozen)]
    struct MarkerSeeds {
        index: crate::seeds::SeedIndex,
    }

    #[pymethods]
    impl MarkerSeeds {
        #[new]
        #[pyo3(signature = (profiles, k, threshold, x_drop, window, threads=None))]
        #[allow(clippy::too_many_arguments)]
        fn new(
            py: Python<'_>,
            profiles: Vec<numpy::PyReadonlyArray2<'_, f32>>,
            k: usize,
            threshold: f32,
            x_drop: f32,
            window: usize,
            threads: Option<usize>,
        ) -> PyResult<Self> {
            let mut rows = Vec::with_capacity(profiles.len());
            for (i, profile) in profiles.iter().enumerate() {
                if profile.shape()[1] != 20 {
                    return Err(ParameterError::new_err(format!(
                        "profile {i}: {} columns, not 20",
                        profile.shape()[1]
                    )));
                }
                rows.push((profile.as_slice()?, profile.shape()[0]));
            }
            let options = crate::seeds::SeedOptions {
                k,
                threshold,
                x_drop,
                window,
            };
            let index = py
                .detach(|| {
                    let views: Vec<crate::seeds::Profile<'_>> = rows
                        .iter()
                        .map(|&(scores, length)| crate::seeds::Profile { scores, length })
                        .collect();
                    crate::composition::thread_pool(threads)?
                        .install(|| crate::seeds::SeedIndex::build(&views, options))
                })
                .map_err(to_python)?;
            Ok(MarkerSeeds { index })
        }

        /// Distinct seeds of each model.
        #[getter]
        fn seeds(&self) -> Vec<u64> {
            self.index.seeds.clone()
        }

        #[getter]
        fn table_bytes(&self) -> usize {
            self.index.table_bytes()
        }

        /// For each model, the indices of the proteins reaching `min_score` bits against it.
        #[pyo3(signature = (proteins, min_score, threads=None))]
        fn candidates<'py>(
            &self,
            py: Python<'py>,
            proteins: Vec<Vec<u8>>,
            min_score: f32,
            threads: Option<usize>,
        ) -> PyResult<Vec<Bound<'py, PyArray1<u32>>>> {
            let per_model = py
                .detach(|| {
                    let slices: Vec<&[u8]> = proteins.iter().map(|p| p.as_slice()).collect();
                    crate::composition::thread_pool(threads)?
                        .install(|| self.index.candidates(&slices, min_score))
                })
                .map_err(to_python)?;
            Ok(per_model
                .into_iter()
                .map(|rows| PyArray1::from_vec(py, rows))
                .collect())
        }

        /// (protein, model, best seed-anchored ungapped score) of every pair with a seed.
        #[pyo3(signature = (proteins, threads=None))]
        #[allow(clippy::type_complexity)]
        fn best_scores<'py>(
            &self,
            py: Python<'py>,
            proteins: Vec<Vec<u8>>,
            threads: Option<usize>,
        ) -> PyResult<(
            Bound<'py, PyArray1<u32>>,
            Bound<'py, PyArray1<u32>>,
            Bound<'py, PyArray1<f32>>,
        )> {
            let found = py
                .detach(|| {
                    let slices: Vec<&[u8]> = proteins.iter().map(|p| p.as_slice()).collect();
                    crate::composition::thread_pool(threads)
                        .map(|pool| pool.install(|| self.index.best_scores(&slices)))
                })
                .map_err(to_python)?;
            Ok((
                PyArray1::from_iter(py, found.iter().map(|f| f.0)),
                PyArray1::from_iter(py, found.iter().map(|f| f.1)),
                PyArray1::from_iter(py, found.iter().map(|f| f.2)),
            ))
        }
    }

    /// Panics: lets the tests check that a Rust panic reaches the user as one line.
    #[pyfunction]
    fn _panic_for_tests(message: &str) {
        panic!("{message}");
    }

    /// VAEBIN_DEBUG set to anything but "" or "0"; the CLI reads it by the same rule.
    fn debug_requested() -> bool {
        std::env::var_os("VAEBIN_DEBUG").is_some_and(|value| !value.is_empty() && value != "0")
    }

    #[pymodule]
    fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
        let py = m.py();
        // A panic reaches Python as PanicException, whose message the CLI prints as one line;
        // the default hook would first print its own lines to stderr. It still runs when
        // VAEBIN_DEBUG is on at the time of the panic (`vaebin-rs --debug` sets it after this
        // module is loaded), so the debug output names the panic's source line.
        let default_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if debug_requested() {
                default_hook(info);
            }
        }));
        m.add("__version__", env!("CARGO_PKG_VERSION"))?;
        m.add("VaebinError", py.get_type::<VaebinError>())?;
        m.add("InputFileError", py.get_type::<InputFileError>())?;
        m.add("FormatError", py.get_type::<FormatError>())?;
        m.add("InputDataError", py.get_type::<InputDataError>())?;
        m.add("ParameterError", py.get_type::<ParameterError>())?;
        m.add_function(wrap_pyfunction!(composition_arrays, m)?)?;
        m.add_function(wrap_pyfunction!(kmer_labels, m)?)?;
        m.add_function(wrap_pyfunction!(sequence_names_and_lengths, m)?)?;
        m.add_function(wrap_pyfunction!(coverage_arrays, m)?)?;
        m.add_function(wrap_pyfunction!(total_average_depths, m)?)?;
        m.add_function(wrap_pyfunction!(depth_table_rows, m)?)?;
        m.add_function(wrap_pyfunction!(write_bins, m)?)?;
        m.add_function(wrap_pyfunction!(selected_sequences, m)?)?;
        m.add_function(wrap_pyfunction!(read_feature_arrays, m)?)?;
        m.add_function(wrap_pyfunction!(write_read_bins, m)?)?;
        m.add_function(wrap_pyfunction!(_panic_for_tests, m)?)?;
        m.add_class::<MarkerSeeds>()?;
        Ok(())
    }
}
