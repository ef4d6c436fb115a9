import { Form, Input, InputNumber, Select, Switch } from "antd";
import { useEffect } from "react";
import type { FieldSpec } from "../lib/schemaFields";

function Widget({ field }: { field: FieldSpec }) {
  switch (field.widget) {
    case "select":
      return <Select aria-label={field.label} options={field.options?.map((o) => ({ value: o.value as string, label: o.label }))} allowClear={!field.required} />;
    case "switch":
      return <Switch aria-label={field.label} />;
    case "number":
      return <InputNumber aria-label={field.label} min={field.min} max={field.max} precision={field.integer ? 0 : undefined} style={{ width: 200 }} />;
    case "password":
      return <Input.Password aria-label={field.label} maxLength={field.maxLength} autoComplete="off" />;
    case "textarea":
      return <Input.TextArea aria-label={field.label} maxLength={field.maxLength} rows={4} />;
    default:
      return <Input aria-label={field.label} maxLength={field.maxLength} />;
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
  const [form] = Form.useForm();
  useEffect(() => {
    form.setFieldsValue(value);
  }, [form, value]);
  // Object and array fields are edited in the JSON view; the form shows the rest.
  const shown = fields.filter((f) => f.widget !== "json");
  return (
    <Form
      form={form}
      layout="vertical"
      initialValues={value}
      onValuesChange={(_, all: Record<string, unknown>) => onChange({ ...value, ...all })}
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
