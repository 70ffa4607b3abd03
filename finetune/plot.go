package finetune

import (
	"fmt"
	"io"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"

	"github.com/compressml/compress/internal/atomicfile"
)

// PlotHistory draws training and validation loss and accuracy per epoch
// into a PNG file (written through a temporary file).
func PlotHistory(history []EpochStats, path string) error {
	if len(history) == 0 {
		return fmt.Errorf("no epochs to plot")
	}
	lossPlot, accPlot := plot.New(), plot.New()
	lossPlot.Title.Text, accPlot.Title.Text = "loss", "accuracy"
	lossPlot.X.Label.Text, accPlot.X.Label.Text = "epoch", "epoch"
	series := func(f func(EpochStats) (float64, bool)) plotter.XYs {
		var xy plotter.XYs
		for _, e := range history {
			if v, ok := f(e); ok {
				xy = append(xy, plotter.XY{X: float64(e.Epoch), Y: v})
			}
		}
		return xy
	}
	trainLoss := series(func(e EpochStats) (float64, bool) { return e.TrainLoss, true })
	trainAcc := series(func(e EpochStats) (float64, bool) { return e.TrainAccuracy, true })
	valLoss := series(func(e EpochStats) (float64, bool) {
		if e.Val == nil {
			return 0, false
		}
		return e.Val.Loss, true
	})
	valAcc := series(func(e EpochStats) (float64, bool) {
		if e.Val == nil {
			return 0, false
		}
		return e.Val.Accuracy, true
	})
	for _, p := range []struct {
		pl         *plot.Plot
		train, val plotter.XYs
	}{{lossPlot, trainLoss, valLoss}, {accPlot, trainAcc, valAcc}} {
		args := []any{"train", p.train}
		if len(p.val) > 0 {
			args = append(args, "validation", p.val)
		}
		if err := plotutilAddLinePoints(p.pl, args...); err != nil {
			return err
		}
		p.pl.Legend.Top = true
	}
	const w, h = 10 * vg.Inch, 4 * vg.Inch
	img := vgimg.New(w, h)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 1, Cols: 2, PadX: vg.Millimeter * 4, PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 2}
	canvases := plot.Align([][]*plot.Plot{{lossPlot, accPlot}}, tiles, dc)
	lossPlot.Draw(canvases[0][0])
	accPlot.Draw(canvases[0][1])
	return atomicfile.Write(path, func(w io.Writer) error {
		_, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(w)
		return err
	})
}
