// A time-series chart on uPlot (canvas; its own stylesheet is bundled). The x axis is Unix seconds, as uPlot expects.
import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";
import "uplot/dist/uPlot.min.css";

export interface ChartSeries {
  label: string;
  color: string;
  values: (number | null)[];
}

interface TimeChartProps {
  /** Unix seconds, ascending. */
  x: number[];
  series: ChartSeries[];
  height?: number;
  bars?: boolean;
  /** Names the chart for assistive technology. */
  title: string;
}

/** Tick steps of the time axis, in seconds: from 1 s to a day. */
const TIME_STEPS = [1, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10_800, 21_600, 43_200, 86_400];

/** `07:04` (or `07:04:05` with seconds) in local time, for Unix seconds. */
function clockLabel(seconds: number, withSeconds: boolean): string {
  const date = new Date(seconds * 1000);
  const two = (n: number) => String(n).padStart(2, "0");
  const clock = `${two(date.getHours())}:${two(date.getMinutes())}`;
  return withSeconds ? `${clock}:${two(date.getSeconds())}` : clock;
}

/** A line (or bar) chart over time that follows its container's width. */
export function TimeChart({ x, series, height = 180, bars = false, title }: TimeChartProps) {
  const container = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const shape = series.map((s) => `${s.label}:${s.color}`).join("|");

  useEffect(() => {
    const element = container.current;
    if (!element) return;
    const barPaths = bars ? uPlot.paths.bars?.({ size: [0.8, 24] }) : undefined;
    const chart = new uPlot(
      {
        width: Math.max(element.clientWidth, 200),
        height,
        scales: { y: { range: (_u, _min, max) => [0, Math.max(1, max * 1.1)] } },
        axes: [
          {
            stroke: "#5b6472",
            grid: { stroke: "#eef0f3" },
            space: 70,
            // Whole seconds at the finest: the charts show samples seconds or minutes apart, never milliseconds.
            incrs: TIME_STEPS,
            values: (_u, splits, _axis, _space, step) => splits.map((t) => clockLabel(t, step < 60)),
          },
          { stroke: "#5b6472", grid: { stroke: "#eef0f3" }, size: 48 },
        ],
        series: [
          {},
          ...series.map((s) => ({
            label: s.label,
            stroke: s.color,
            width: 2,
            fill: bars ? `${s.color}99` : undefined,
            paths: barPaths,
            points: { show: !bars },
          })),
        ],
      },
      [[], ...series.map(() => [])],
      element,
    );
    plot.current = chart;
    // The container's width changes with the window: the canvas follows it; the observer ends with the chart.
    const resize = new ResizeObserver(() => chart.setSize({ width: Math.max(element.clientWidth, 200), height }));
    resize.observe(element);
    return () => {
      resize.disconnect();
      chart.destroy();
      plot.current = null;
    };
    // The chart is rebuilt only when its series change shape; new data goes through setData below.
  }, [shape, height, bars]);

  useEffect(() => {
    plot.current?.setData([x, ...series.map((s) => s.values)]);
  });

  return <div class="chart" ref={container} role="img" aria-label={title} />;
}
