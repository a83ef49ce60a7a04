// The dashboard model as Grafana itself types it, made strict enough to reject what Grafana would
// silently ignore. Everything here is built from Grafana's published types (npm @grafana/schema,
// @grafana/data, @grafana/prometheus, all pinned to the Grafana version deploy/compose.yaml runs);
// this file only composes them:
//
// - Grafana's generic Panel types `options` as Record<string, unknown> and `targets` as
//   Record<string, unknown>[]; here each panel type gets its own plugin's Options and FieldConfig
//   (the panelcfg types of @grafana/schema), its pluginVersion, Prometheus targets (PromQuery) and
//   typed transformations (the option types of @grafana/data's standard transformers), so that an
//   object literal checked with `satisfies` fails on any key or enum value Grafana does not know.
// - Override properties are typed per id: a standard field-config key with its value type, or
//   `custom.<key>` of the panel's own FieldConfig.
// - The JSON of a dashboard holds enum *values* ("value", "absolute"), which TypeScript does not
//   accept for a string enum type; Json<T> replaces every string enum by the union of its values.
// - Deprecated fields are removed (Deprecated<...>): a generated dashboard uses none of them.
//
// tests/dashboards/test_dashboards_grafana_types.py writes every generated dashboard as
// `satisfies` literals of these types and runs `tsc --strict` over them.

import type * as schema from '@grafana/schema';
import type * as statCfg from '@grafana/schema/dist/esm/raw/composable/stat/panelcfg/x/StatPanelCfg_types.gen';
import type * as tableCfg from '@grafana/schema/dist/esm/raw/composable/table/panelcfg/x/TablePanelCfg_types.gen';
import type * as timelineCfg from '@grafana/schema/dist/esm/raw/composable/statetimeline/panelcfg/x/StateTimelinePanelCfg_types.gen';
import type * as timeseriesCfg from '@grafana/schema/dist/esm/raw/composable/timeseries/panelcfg/x/TimeSeriesPanelCfg_types.gen';
import type {
  DataLink,
  DataTransformerID,
  DataTransformerInfo,
  FieldMatcherID,
  GroupingToMatrixTransformerOptions,
  standardTransformers,
} from '@grafana/data';
import type { PromQuery } from '@grafana/prometheus';

/** A string enum becomes the union of its values; objects and arrays recursively. */
export type Json<T> = T extends string
  ? `${T}`
  : T extends readonly (infer U)[]
    ? Json<U>[]
    : T extends object
      ? { [K in keyof T]: Json<T[K]> }
      : T;

/** One property of an override: a field-config key (with prefix) and a value of its type. */
type PropertyOf<T, Prefix extends string> = {
  [K in keyof T & string]-?: { id: `${Prefix}${K}`; value: Exclude<T[K], undefined> };
}[keyof T & string];

/** Data links on fields: what Grafana stores (no callbacks). */
export type FieldLink = Json<Omit<DataLink, 'onBuildUrl' | 'onClick'>>;

/** Standard field config (everything but `custom`), with typed data links. */
type StandardField = Omit<Json<schema.FieldConfig>, 'custom' | 'links'> & { links?: FieldLink[] };

export type Matcher = { id: `${FieldMatcherID}`; options?: unknown };

export type Override<Custom> = {
  matcher: Matcher;
  properties: Array<PropertyOf<StandardField, ''> | PropertyOf<Custom, 'custom.'>>;
};

export type FieldConfigSource<Custom> = {
  defaults: StandardField & { custom?: Custom };
  overrides: Override<Custom>[];
};

/** A Prometheus query as the Prometheus datasource stores it (intervalFactor is deprecated). */
export type Target = Omit<Json<PromQuery>, 'intervalFactor' | 'datasource'> & {
  datasource: Json<schema.DataSourceRef>;
};

type TransformerOptions<I> = I extends DataTransformerInfo<infer O> ? Json<O> : never;
type Std = typeof standardTransformers;

/** The transformations the dashboards use, each with its options type. Add more as needed. */
export type Transformation =
  | { id: `${DataTransformerID.organize}`; options: TransformerOptions<Std['organizeFieldsTransformer']> }
  | { id: `${DataTransformerID.groupingToMatrix}`; options: Json<GroupingToMatrixTransformerOptions> }
  | { id: `${DataTransformerID.reduce}`; options: TransformerOptions<Std['reduceTransformer']> }
  | { id: `${DataTransformerID.merge}`; options: TransformerOptions<Std['mergeTransformer']> }
  | { id: `${DataTransformerID.labelsToFields}`; options: TransformerOptions<Std['labelsToFieldsTransformer']> }
  | { id: `${DataTransformerID.sortBy}`; options: TransformerOptions<Std['sortByTransformer']> }
  | { id: `${DataTransformerID.filterFieldsByName}`; options: TransformerOptions<Std['filterFieldsByNameTransformer']> };

type BasePanel = Omit<
  Json<schema.Panel>,
  'type' | 'options' | 'fieldConfig' | 'targets' | 'transformations' | 'pluginVersion' | 'datasource'
>;

type PanelOf<Type extends string, Version extends string, Options, Custom> = BasePanel & {
  type: Type;
  pluginVersion: Version;
  datasource: Json<schema.DataSourceRef>;
  options: Json<Options>;
  fieldConfig: FieldConfigSource<Custom>;
  targets: Target[];
  transformations?: Transformation[];
};

/** Table field options without the deprecated displayMode (cellOptions replaces it). */
type TableField = Omit<Json<tableCfg.FieldConfig>, 'displayMode'>;

export type StatPanel = PanelOf<'stat', typeof statCfg.pluginVersion, statCfg.Options, {}>;
export type TablePanel = PanelOf<'table', typeof tableCfg.pluginVersion, tableCfg.Options, TableField>;
export type StateTimelinePanel = PanelOf<
  'state-timeline',
  typeof timelineCfg.pluginVersion,
  timelineCfg.Options,
  Json<timelineCfg.FieldConfig>
>;
export type TimeSeriesPanel = PanelOf<
  'timeseries',
  typeof timeseriesCfg.pluginVersion,
  timeseriesCfg.Options,
  Json<timeseriesCfg.FieldConfig>
>;
export type AnyPanel = StatPanel | TablePanel | StateTimelinePanel | TimeSeriesPanel;

export type Variable = Json<schema.VariableModel>;
export type DashboardLink = Json<schema.DashboardLink>;

export type Dashboard = Omit<Json<schema.Dashboard>, 'panels' | 'templating' | 'links'> & {
  panels: AnyPanel[];
  templating: { list: Variable[] };
  links: DashboardLink[];
};
