// ECharts options for each kind of widget data, and one small wrapper that owns a chart instance.

import * as echarts from '../vendor/echarts/echarts.esm.min.js';
import { formatValue, formatCell, isNumber } from './format.js';

/** The page's base font size in px: charts scale with the page (4K screens, wall mode). */
export function baseFontSize() {
  return parseFloat(getComputedStyle(document.documentElement).fontSize) || 16;
}

// Labels drawn over coloured areas (funnel steps, heatmap cells) stay legible on light and dark fills.
const READABLE_ON_ANY_FILL = { color: '#ffffff', textBorderColor: 'rgba(0, 0, 0, 0.55)', textBorderWidth: 2 };

function textSize(style) {
  return Math.round(style.fontSize * 0.8);
}

function common(style) {
  const size = textSize(style);
  return {
    backgroundColor: 'transparent',
    textStyle: { fontSize: size },
    animationDuration: 300,
    animationDurationUpdate: 300,
    tooltip: { textStyle: { fontSize: size } },
  };
}

/** Axis labels in the page's type scale (ECharts' own default stays 12 px on any screen). */
function axisLabel(style, extra = {}) {
  return { fontSize: textSize(style), ...extra };
}

function legend(style, show) {
  const size = textSize(style);
  return { show, type: 'scroll', top: 0, itemWidth: size * 2, itemHeight: size, textStyle: { fontSize: size } };
}

export function seriesOption(data, style) {
  const chart = data.chart || 'line';
  const series = data.series || [];
  const x = data.x || [];
  const unit = series[0]?.unit || 'count';
  const isLine = chart === 'line' || chart === 'area';
  const stacked = chart === 'stacked_bar' || (chart === 'area' && series.length > 1);
  return {
    ...common(style),
    tooltip: { ...common(style).tooltip, trigger: 'axis', valueFormatter: (v) => formatValue(v, unit) },
    legend: legend(style, series.length > 1),
    grid: { left: 8, right: 16, top: series.length > 1 ? style.fontSize * 2 : style.fontSize, bottom: 8, containLabel: true },
    xAxis: { type: 'time', axisLabel: axisLabel(style, { hideOverlap: true }) },
    yAxis: { type: 'value', axisLabel: axisLabel(style, { formatter: (v) => formatValue(v, unit, { short: true }) }) },
    series: series.map((s) => ({
      name: s.label || s.name,
      type: isLine ? 'line' : 'bar',
      stack: stacked ? 'total' : undefined,
      areaStyle: chart === 'area' ? { opacity: 0.35 } : undefined,
      showSymbol: x.length <= 40,
      symbolSize: Math.max(4, style.fontSize / 4),
      lineStyle: isLine ? { width: Math.max(2, style.fontSize / 8) } : undefined,
      smooth: false,
      data: x.map((t, i) => [t, s.values?.[i] ?? null]),
    })),
  };
}

function tableColumns(data) {
  const columns = data.columns || [];
  const index = (name, fallback) => {
    const found = columns.findIndex((c) => c.name === name);
    return found >= 0 ? found : fallback;
  };
  const labelIndex = index(data.label_column, 0);
  let valueIndex = index(data.value_column, -1);
  if (valueIndex < 0) valueIndex = columns.findIndex((c, i) => i !== labelIndex && c.type !== 'text');
  if (valueIndex < 0) valueIndex = Math.min(1, columns.length - 1);
  return { labelIndex, valueIndex, valueType: columns[valueIndex]?.type, valueLabel: columns[valueIndex]?.label };
}

export function tableBarOption(data, style) {
  const { labelIndex, valueIndex, valueType, valueLabel } = tableColumns(data);
  const rows = data.rows || [];
  return {
    ...common(style),
    tooltip: { ...common(style).tooltip, trigger: 'axis', axisPointer: { type: 'shadow' }, valueFormatter: (v) => formatCell(v, valueType) },
    grid: { left: 8, right: 24, top: 8, bottom: 8, containLabel: true },
    xAxis: { type: 'value', axisLabel: axisLabel(style, { formatter: (v) => formatCell(v, valueType) }) },
    yAxis: {
      type: 'category',
      inverse: true,
      data: rows.map((r) => String(r[labelIndex] ?? '—')),
      axisLabel: axisLabel(style, { formatter: (label) => shorten(label, 22) }),
    },
    series: [{ name: valueLabel, type: 'bar', data: rows.map((r) => r[valueIndex]) }],
  };
}

export function tablePieOption(data, style) {
  const { labelIndex, valueIndex, valueType, valueLabel } = tableColumns(data);
  return {
    ...common(style),
    tooltip: { ...common(style).tooltip, trigger: 'item', valueFormatter: (v) => formatCell(v, valueType) },
    legend: { ...legend(style, true), bottom: 0, top: undefined },
    series: [
      {
        name: valueLabel,
        type: 'pie',
        radius: ['35%', '65%'],
        center: ['50%', '45%'],
        label: { formatter: '{d}%', fontSize: textSize(style) },
        data: (data.rows || []).map((r) => ({ name: String(r[labelIndex] ?? '—'), value: r[valueIndex] })),
      },
    ],
  };
}

export function funnelOption(data, style) {
  const steps = data.steps || [];
  const size = Math.round(style.fontSize * 0.8);
  return {
    ...common(style),
    tooltip: {
      ...common(style).tooltip,
      trigger: 'item',
      formatter: (p) => {
        const step = steps[p.dataIndex] || {};
        return `${escapeText(p.name)}: ${formatValue(step.count)} (${formatValue(step.conversion_rate, 'ratio')})`;
      },
    },
    series: [
      {
        type: 'funnel',
        sort: 'none',
        left: '5%',
        width: '90%',
        top: 8,
        bottom: 8,
        minSize: '8%',
        gap: 2,
        label: {
          position: 'inside',
          fontSize: size,
          ...READABLE_ON_ANY_FILL,
          formatter: (p) => {
            const step = steps[p.dataIndex] || {};
            return `${p.name}  ${formatValue(step.count, 'count', { short: true })} · ${formatValue(step.conversion_rate, 'ratio')}`;
          },
        },
        data: steps.map((s) => ({ name: s.label || s.name, value: s.count })),
      },
    ],
  };
}

export function retentionOption(data, style, dark) {
  const periods = (data.periods || []).map(String);
  const cohorts = data.cohorts || [];
  const cells = [];
  cohorts.forEach((cohort, y) => {
    (cohort.rates || []).forEach((rate, x) => {
      if (isNumber(rate)) cells.push([x, y, rate]);
    });
  });
  const size = Math.round(style.fontSize * 0.7);
  return {
    ...common(style),
    tooltip: {
      ...common(style).tooltip,
      position: 'top',
      formatter: (p) => {
        const cohort = cohorts[p.value[1]] || {};
        return `${escapeText(cohort.cohort)} (${formatValue(cohort.size)}), period ${escapeText(periods[p.value[0]])}: ${formatValue(p.value[2], 'ratio')}`;
      },
    },
    grid: { left: 16, right: 8, top: 8, bottom: style.fontSize * 1.8, containLabel: true },
    xAxis: {
      type: 'category',
      data: periods,
      splitArea: { show: true },
      name: 'period',
      nameLocation: 'middle',
      nameGap: style.fontSize * 1.6,
      nameTextStyle: { fontSize: textSize(style) },
      axisLabel: axisLabel(style),
    },
    yAxis: {
      type: 'category',
      inverse: true,
      data: cohorts.map((c) => `${c.cohort} (${formatValue(c.size, 'count', { short: true })})`),
      splitArea: { show: true },
      axisLabel: axisLabel(style),
    },
    visualMap: {
      min: 0,
      max: 1,
      show: false,
      inRange: { color: dark ? ['#1b2a3a', '#2f7fd1', '#7fd1ff'] : ['#f1f6fd', '#7cb2ea', '#1f5fae'] },
    },
    series: [
      {
        type: 'heatmap',
        data: cells,
        label: { show: cells.length <= 150, fontSize: size, ...READABLE_ON_ANY_FILL, formatter: (p) => formatValue(p.value[2], 'ratio') },
        emphasis: { itemStyle: { borderColor: dark ? '#fff' : '#222', borderWidth: 1 } },
      },
    ],
  };
}

function shorten(text, length) {
  const chars = [...String(text)];
  return chars.length > length ? `${chars.slice(0, length - 1).join('')}…` : chars.join('');
}

function escapeText(value) {
  return String(value ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** One ECharts instance in ``container``, resized with it. */
export class Chart {
  constructor(container, dark, onResize = () => {}) {
    this.container = container;
    this.instance = echarts.init(container, dark ? 'dark' : null, { renderer: 'canvas' });
    this.observer = new ResizeObserver(() => {
      this.instance.resize();
      onResize();
    });
    this.observer.observe(container);
  }

  set(option) {
    this.instance.setOption(option, { notMerge: true, lazyUpdate: true });
  }

  dispose() {
    this.observer.disconnect();
    this.instance.dispose();
  }
}
