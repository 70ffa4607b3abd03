// Package eval measures models: classification metrics on a data set,
// model summaries (shapes, parameters, MACs) and latency benchmarks. Every
// report is a plain struct with stable snake_case JSON field names, so that
// `compress ... --json` output can be gated on in CI, and with a WriteText
// method for terminals.
//
// # Classification metrics
//
// Classification accumulates a confusion matrix and top-5 hits from rows of
// class scores; it only counts, so concurrent Add calls in any order give
// the same Report:
//
//	acc, _ := eval.NewClassification(10)
//	acc.Add(scores, labels) // scores: len(labels) rows of 10 logits
//	r := acc.Report()       // r.Accuracy, r.Top5Accuracy, r.ConfusionMatrix, r.PerClass...
//
// The predicted class is the first highest score; the top-5 accuracy ranks
// ties the same way (NaN ranks last). Precision, recall and F1 per class and
// their macro averages come from the confusion matrix (a class never
// predicted has precision 0, as scikit-learn's zero_division=0).
//
// Classify runs an executor over a data.Dataset and returns the report:
//
//	ex, _ := runtime.NewExecutor(g, runtime.Options{})
//	ds, _ := data.LoadMNIST(dir, data.SplitTest)
//	r, err := eval.Classify(ctx, ex, ds, eval.Options{BatchSize: 64})
//
// A model input whose batch dimension is fixed (mnist-8's is 1) runs
// batches of exactly that size; a dynamic one runs Options.BatchSize.
//
// # Summaries and benchmarks
//
// Summarize plans a graph at a batch size and lists every node with its
// output shapes, parameter count and multiply-accumulates. Benchmark runs a
// model on seeded random inputs and reports latency percentiles and
// throughput after warm-up.
package eval
