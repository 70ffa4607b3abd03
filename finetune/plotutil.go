package finetune

import (
	"fmt"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotutil"
)

// plotutilAddLinePoints adds named line-and-point series to p.
func plotutilAddLinePoints(p *plot.Plot, args ...any) error {
	if err := plotutil.AddLinePoints(p, args...); err != nil {
		return fmt.Errorf("plotting: %w", err)
	}
	return nil
}
