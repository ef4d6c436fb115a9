import { Form, Input, InputNumber, Select, Switch } from "antd";
import type { FieldSpec } from "../lib/schemaFields";

// Form.Item hands its direct child `value`/`checked` and `onChange`: pass them on to the input.
function Widget({ field, ...bound }: { field: FieldSpec } & Record<string, unknown>) {
  switch (field.widget) {
    case "select":
      return <Select {...bound} aria-label={field.label} options={field.options?.map((o) => ({ value: o.value as string, label: o.label }))} allowClear={!field.required} />;
    case "switch":
      return <Switch {...bound} aria-label={field.label} />;
    case "number":
      return <InputNumber {...bound} aria-label={field.label} min={field.min} max={field.max} precision={field.integer ? 0 : undefined} style={{ width: 200 }} />;
    case "password":
      return <Input.Password {...bound} aria-label={field.label} maxLength={field.maxLength} autoComplete="off" />;
    case "textarea":
      return <Input.TextArea {...bound} aria-label={field.label} maxLength={field.maxLength} rows={4} />;
    default:
      return <Input {...bound} aria-label={field.label} maxLength={field.maxLength} />;
  }
}

/** A form for an action's input schema; `value` and `onChange` carry the whole payload. */
export function SchemaForm({
  fields,
  value,
  onChange,
}: {
  fields: FieldSpec[];
  value: Record<string, unknown>;
  onChange: (next: Record<string, unknown>) => void;
}) {
  // Uncontrolled after mount (initialValues); the parent remounts it (key) when the payload
  // changed elsewhere, in the JSON view.
  const [form] = Form.useForm();
  // Object and array fields are edited in the JSON view; the form shows the rest.
  const shown = fields.filter((f) => f.widget !== "json");
  return (
    <Form
      form={form}
      layout="vertical"
      initialValues={value}
      onValuesChange={() => onChange({ ...value, ...(form.getFieldsValue(true) as Record<string, unknown>) })}
    >
      {shown.map((f) => (
        <Form.Item
          key={f.key}
          name={f.key}
          label={f.label}
          extra={f.description}
          required={f.required}
          rules={f.required ? [{ required: true }] : undefined}
          valuePropName={f.widget === "switch" ? "checked" : "value"}
        >
          <Widget field={f} />
        </Form.Item>
      ))}
    </Form>
  );
}
