// Package eval measures models: classification and regression metrics on a
// data set, model summaries (shapes, parameters, MACs) and latency
// benchmarks. Every report is a plain struct with stable snake_case JSON
// field names, so that `compress ... --json` output can be gated on in CI,
// and with a WriteText method for terminals.
//
// # Classification metrics
//
// Classification accumulates a confusion matrix, top-5 hits and the scores
// (for ROC-AUC) from rows of class scores; concurrent Add calls in any order
// give the same Report:
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
// ROC-AUC (field roc_auc) is computed exactly from ranks, ties counting one
// half, as scikit-learn's roc_auc_score: for two classes the binary area of
// class 1's softmax probability, for more the macro average of the
// one-vs-rest areas of each class's softmax probability (scores that
// already are probabilities are used as they are). Its value depends only
// on the examples' scores and labels, never on the order of Add calls. A
// model with a single output per example is a binary classifier whose
// output is the logit of class 1.
//
// # Regression metrics
//
// Regress runs a model over a data set with float targets (data.Targeter)
// and reports MSE, RMSE, MAE and R2 (fields mse, rmse, mae, r2; per output
// too when there are several):
//
//	ds, _ := data.OpenWith("houses.csv", data.SplitTest, data.Options{Task: data.TaskRegression})
//	r, err := eval.Regress(ctx, ex, ds, eval.Options{})
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
